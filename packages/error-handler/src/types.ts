import type { IncomingMessage, ServerResponse } from 'node:http';

/** What the `log` option is told about an error besides the error itself. */
export interface LogInfo {
  /** The status the error maps to (its 4xx/5xx `status`/`statusCode`, else 500), whatever was actually sent. */
  status: number;
  /** The response had started (headers sent) when the error arrived: it was destroyed, not rendered. */
  headersSent: boolean;
  /** The response had already been ended by the app: the error came too late and was only logged. */
  responseEnded: boolean;
  /** The client had disconnected before the error arrived: not a server failure of its own. */
  clientGone: boolean;
}

/** The media types the default renderer produces, chosen from the request's `Accept`. */
export type ErrorMediaType = 'application/problem+json' | 'application/json' | 'text/html' | 'text/plain';

/** What may be shown of an error, as the default renderer shows it. A custom `render` gets the same. */
export interface ErrorDetails {
  status: number;
  /** The reason phrase of `status` ("Not Found"). */
  title: string;
  /** `err.message`, only when the error may be exposed (or with `debug`). */
  message: string | undefined;
  /** `err.code` when it is a string, under the same condition as `message`. */
  code: string | undefined;
  /** `err.stack`, only with `debug: true`. */
  stack: string | undefined;
  /** The media type negotiated from `Accept` (text/plain when nothing fits). */
  mediaType: ErrorMediaType;
}

/** A body from a custom `render`: the handler sets Content-Type and Content-Length and leaves it out for HEAD. */
export interface RenderedError {
  type: string;
  body: string | Uint8Array;
}

export interface ErrorHandlerOptions<Req extends IncomingMessage = IncomingMessage> {
  /**
   * Show messages and stack traces of every error in responses. Default
   * `false`. Never switched on by `NODE_ENV`: only by this option.
   */
  debug?: boolean;
  /**
   * Whether error messages are shown. Default: each error decides by its
   * `expose` property (http-errors: true for 4xx). `false` never shows them;
   * `true` shows them all (5xx too), without stacks.
   */
  expose?: boolean;
  /**
   * An unread request body up to this size (bytes or a string like "64kb") is
   * read and discarded after the error response, so the connection can serve
   * the next request. A larger body, or one of unknown length, gets
   * `Connection: close` instead. Default `"64kb"`.
   */
  drainLimit?: number | string;
  /**
   * Called once per error: `(err, req, info)`. Default: 5xx errors to stderr
   * with method and URL; 4xx and errors of clients that left are not logged.
   * If it throws or rejects, that is written to stderr and the response is
   * not affected. JS configs only.
   */
  log?: (err: unknown, req: Req, info: LogInfo) => unknown;
  /**
   * Renders the body of an error response: return `{ type, body }`, or
   * `undefined` for the default rendering. May be async: any promise or
   * thenable is waited for. Status and headers are set by the handler. If it
   * throws, rejects or returns something else, a bare 500 is sent. JS configs
   * only.
   */
  render?: (err: unknown, req: Req, details: ErrorDetails) => RenderedError | undefined | PromiseLike<RenderedError | undefined>;
}

/** Connect-style error middleware: `(err, req, res, next)`. */
export type TerminalErrorHandler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  err: unknown,
  req: Req,
  res: Res,
  next: (err?: unknown) => void,
) => void;

/**
 * The middleware to put first: `(req, res, next)`. Its `terminal` property is
 * the error middleware to put last, with the same options.
 */
export interface ErrorHandler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> {
  (req: Req, res: Res, next: (err?: unknown) => void): void;
  readonly terminal: TerminalErrorHandler<Req, Res>;
}
