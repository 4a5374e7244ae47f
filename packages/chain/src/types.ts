import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ListenOptions } from 'node:net';

/** Passes control on: with no argument (or a falsy one) to the next middleware, with an error to the next error middleware. */
export type Next = (err?: unknown) => void;

/** A terminal request handler, as given to `http.createServer`. */
export type Handler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
) => unknown;

/** Connect-style middleware. It may return a promise: a rejection goes down the error path. */
export type Middleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
  next: Next,
) => unknown;

/** Error middleware, told apart by its four parameters (as in Connect and Express). */
export type ErrorMiddleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  err: unknown,
  req: Req,
  res: Res,
  next: Next,
) => unknown;

/** Items that are not error middleware: middleware, handlers, chains, Express/Connect apps, objects with `handle`, an `http.Server`, lists. */
export type MiddlewareItem<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> =
  | Middleware<Req, Res>
  | { handle: Middleware<Req, Res> }
  | Server
  | readonly ChainItem<Req, Res>[];

/** Anything a chain accepts. Error middleware is told apart by its four parameters. */
export type ChainItem<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> =
  | MiddlewareItem<Req, Res>
  | ErrorMiddleware<Req, Res>;

/** What the `blocking` event reports: one middleware kept the event loop busy for `duration` ms before it returned. */
export interface BlockingInfo {
  /** The middleware's function name, or `"anonymous"`. */
  name: string;
  /** Its position in the chain's stack. */
  index: number;
  /** The path it is mounted on, as given to `use()` (`"/"` when not mounted). */
  route: string;
  method: string;
  /** `req.originalUrl`: the URL as the client sent it. */
  url: string;
  /** Synchronous time in milliseconds, from the call until it returned. */
  duration: number;
}

export interface ChainOptions<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> {
  /**
   * Report every middleware whose synchronous part takes at least this many
   * milliseconds, as a `blocking` event (or a process warning when nobody
   * listens). Off by default, and then it costs nothing.
   */
  blockingThreshold?: number;
  /** Show stack traces in the responses the chain writes at its end. Default `false`. */
  debug?: boolean;
  /**
   * Called with errors the chain cannot pass on: errors reaching its end when
   * there is no outer `next`, a second call of `next`, a rejection after
   * `next` was called. Default: log 5xx errors to stderr.
   */
  onError?: (err: unknown, req: Req, res: Res) => void;
}

/** One entry of a chain's stack. */
export interface Layer {
  /** The mount path as given to `use()`, without a trailing slash; `"/"` when not mounted. */
  readonly route: string;
  readonly handle: (...args: never[]) => unknown;
  /** Four parameters: called only while an error is being handled. */
  readonly isErrorMiddleware: boolean;
  readonly name: string;
}

export interface ChainEvents<Req extends IncomingMessage, Res extends ServerResponse> {
  blocking: [info: BlockingInfo, req: Req, res: Res];
}

/**
 * A chain: a request handler for `http.createServer`, a middleware for
 * Express, Connect or another chain, and an EventEmitter.
 */
export interface Chain<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> {
  (req: Req, res: Res, next?: Next): void;
  /**
   * Append items, optionally mounted on `route`. Returns the chain, for chaining.
   * (The first overloads let TypeScript infer the parameters of inline
   * middleware; inline error middleware needs its parameters annotated.)
   */
  use(...items: MiddlewareItem<Req, Res>[]): this;
  use(route: string, ...items: MiddlewareItem<Req, Res>[]): this;
  use(...items: ChainItem<Req, Res>[]): this;
  use(route: string, ...items: ChainItem<Req, Res>[]): this;
  /** Run a request through the chain; at its end call `next`, or respond 404/error when there is none. */
  handle(req: Req, res: Res, next?: Next): void;
  /** `http.createServer(chain).listen(...args)`; returns the server. */
  listen(port?: number, hostname?: string, backlog?: number, listeningListener?: () => void): Server;
  listen(port?: number, hostname?: string, listeningListener?: () => void): Server;
  listen(port?: number, listeningListener?: () => void): Server;
  listen(path: string, listeningListener?: () => void): Server;
  listen(options: ListenOptions, listeningListener?: () => void): Server;
  /** Where this chain is mounted when used inside another Connect-style app, as given to `use()`. */
  route: string;
  readonly stack: readonly Layer[];

  on(event: 'blocking', listener: (info: BlockingInfo, req: Req, res: Res) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'blocking', listener: (info: BlockingInfo, req: Req, res: Res) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
  emit(event: string | symbol, ...args: any[]): boolean;
  listenerCount(event: string | symbol): number;
  removeAllListeners(event?: string | symbol): this;
}
