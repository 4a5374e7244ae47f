import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as http2Constants, type Http2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import bytes from 'bytes';
import onFinished from 'on-finished';
import vary from 'vary';
import { LogFailedError, RenderFailedError, invalidOption } from './errors.js';
import { detailsOf, renderDefault, statusOf, type Disclosure } from './render.js';
import { SIZE_PATTERN } from './schema.js';
import type { ErrorHandler, ErrorHandlerOptions, LogInfo, RenderedError, TerminalErrorHandler } from './types.js';

interface Settings extends Disclosure {
  drainLimit: number;
  log: NonNullable<ErrorHandlerOptions['log']>;
  render: ErrorHandlerOptions['render'];
}

/** What one response has been through, shared by the first middleware and the terminal one. */
interface ResponseState {
  /** An error response was started or the response was destroyed: later errors are only logged. */
  settled: boolean;
  /** This handler destroyed the response: its connection closing is not a client that left. */
  destroyed: boolean;
  /** Errors already logged, so that one error arriving by two paths (a stream and next(err)) is logged once. */
  logged: Set<unknown> | undefined;
  /** Streams piped into the response, still attached. */
  sources: Set<Readable> | undefined;
  /** Set by the first middleware: where the errors its listeners catch go. */
  watcher: Watcher | undefined;
}

interface Watcher {
  settings: Settings;
  req: IncomingMessage;
  /** The one 'error' listener given to every stream piped into this response. */
  onSourceError: ((err: unknown) => void) | undefined;
}

// Kept on the response under a symbol rather than in a WeakMap: a WeakMap
// entry whose value reaches its key (state → req → res) is an ephemeron the
// garbage collector must trace specially, which cost several times more per
// request in our measurements.
const kState = Symbol('unblock.errorHandler.state');
type WithState = ServerResponse & { [kState]?: ResponseState };

// Representation and caching headers of the response that failed: they
// describe a body that will not be sent. Others (CORS, Set-Cookie, security
// headers, request ids) stay, so that a browser can still read the error.
const STALE_HEADERS = [
  'accept-ranges',
  'age',
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'etag',
  'expires',
  'last-modified',
  'link',
  'pragma',
  'refresh',
  'trailer',
  'transfer-encoding',
];
// Of those, what err.headers may not set either: they frame and label the
// error body, which is the handler's own; an error's Transfer-Encoding or
// Content-Length would misframe it. Its caching headers it may set
// (Cache-Control: no-store on a 429, say).
const BODY_HEADERS = new Set(['content-encoding', 'content-length', 'content-range', 'content-type', 'trailer', 'transfer-encoding']);

const BARE_500 = 'Internal Server Error\n';

/**
 * Turns errors into responses without ever wrapping or buffering the body.
 * Put the returned middleware first and `.terminal` last:
 *
 * ```js
 * const errors = errorHandler();
 * http.createServer(chain(errors, app, errors.terminal));
 * ```
 *
 * The middleware watches the response for failures that never travel through
 * `next`: errors of streams piped into it and `'error'` events on it. The
 * terminal error middleware renders errors that do (`next(err)`, throws,
 * rejections). Before headers are sent an error becomes a proper response;
 * after, the response is destroyed so that the client sees it fail.
 */
export function errorHandler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  options: ErrorHandlerOptions<Req> = {},
): ErrorHandler<Req, Res> {
  const settings = validateOptions(options as ErrorHandlerOptions);

  // Four parameters, or Connect, Express and chains take it for ordinary middleware.
  // It never calls `next`: whatever reaches it is answered here.
  const terminal: TerminalErrorHandler<Req, Res> = function terminalErrorHandler(err, req, res, _next) {
    handleError(settings, err, req, res);
  };

  const middleware = function errorHandlerMiddleware(req: Req, res: Res, next: (err?: unknown) => void): void {
    watch(settings, req, res);
    // When `next` runs the rest synchronously and returns its result (a
    // handler composed by hand, a Koa-style adapter) a throw or a rejection
    // comes back here. Connect, Express and chains catch their own and send
    // them on to the error middleware after the failing one: `terminal`.
    let result: unknown;
    try {
      result = next();
    } catch (thrown) {
      handleError(settings, thrown, req, res);
      return;
    }
    if (isThenable(result)) result.then(undefined, (reason: unknown) => handleError(settings, reason, req, res));
  };
  return Object.assign(middleware, { terminal }) as ErrorHandler<Req, Res>;
}

function stateOf(res: ServerResponse): ResponseState {
  return ((res as WithState)[kState] ??= { settled: false, destroyed: false, logged: undefined, sources: undefined, watcher: undefined });
}

// The listeners are shared functions, not closures per request: a healthy
// response costs one small state object and two listener registrations.

/** Listens for the failures that do not travel through `next`. Never touches the data. */
function watch(settings: Settings, req: IncomingMessage, res: ServerResponse): void {
  stateOf(res).watcher = { settings, req, onSourceError: undefined };
  res.on('pipe', onPipe);
  // Also keeps an 'error' on the response (a write after end, say) from
  // crashing the process as an unhandled event.
  res.on('error', onResponseError);
}

function onResponseError(this: ServerResponse, err: unknown): void {
  const { settings, req } = stateOf(this).watcher!;
  handleError(settings, err, req, this);
}

function onPipe(this: ServerResponse, source: Readable): void {
  const res = this;
  const state = stateOf(res);
  const watcher = state.watcher!;
  if (state.sources === undefined) {
    state.sources = new Set();
    res.on('unpipe', onUnpipe);
  }
  state.sources.add(source);
  watcher.onSourceError ??= (err: unknown) => handleError(watcher.settings, err, watcher.req, res);
  source.on('error', watcher.onSourceError);
}

function onUnpipe(this: ServerResponse, source: Readable): void {
  const state = stateOf(this);
  state.sources!.delete(source);
  // A stream the app takes back while the response goes on is its own
  // business again. One left over when the response ended or its client
  // went (pipe() then unpipes it) keeps the listener: an error it still
  // has is logged rather than crashing the process as an unhandled event.
  if (!this.writableEnded && !this.destroyed) source.off('error', state.watcher!.onSourceError!);
}

/** The one place every error goes: render it, or destroy the response, or only log it. Never throws. */
function handleError(settings: Settings, err: unknown, req: IncomingMessage, res: ServerResponse): void {
  const state = stateOf(res);
  try {
    settle(settings, state, err, req, res);
  } catch (failure) {
    // A hostile error object (a throwing getter, a Proxy) must not take the
    // process down from inside an event listener.
    state.settled = true;
    sendBare500(state, req, res);
    try {
      console.error(failure);
    } catch {
      // Nowhere left to say so.
    }
  }
}

/** Decides what the error does to the response (render, destroy, or nothing) and logs it. */
function settle(settings: Settings, state: ResponseState, err: unknown, req: IncomingMessage, res: ServerResponse): void {
  const status = statusOf(err);
  const responseEnded = res.writableEnded;
  // onFinished.isFinished is also true when the connection is gone. A
  // response destroyed with an error (by stream.pipeline, say) failed on
  // the server's side; one destroyed without, by its client.
  const clientGone = !responseEnded && !state.destroyed && onFinished.isFinished(res) && !res.errored;
  const info: LogInfo = { status, headersSent: res.headersSent, responseEnded, clientGone };

  // Answered already (or being answered by an async renderer): a second
  // error, or the same one by a second path, is only logged.
  if (state.settled) {
    report(settings, state, err, req, info);
    return;
  }
  state.settled = true;
  report(settings, state, err, req, info);
  if (responseEnded) return;
  if (clientGone || res.headersSent || res.destroyed) {
    abort(state, res);
    return;
  }
  respond(settings, state, err, req, res, status);
}

function respond(settings: Settings, state: ResponseState, err: unknown, req: IncomingMessage, res: ServerResponse, status: number): void {
  const details = detailsOf(err, req, status, settings);
  const fail = (cause: unknown) => {
    report(settings, state, new RenderFailedError(err, cause), req, { status: 500, headersSent: res.headersSent, responseEnded: res.writableEnded, clientGone: false });
    sendBare500(state, req, res);
  };
  const send = (rendered: RenderedError | undefined) => {
    // An async renderer gives the response time to be torn down meanwhile.
    if (res.headersSent || res.destroyed) {
      abort(state, res);
      return;
    }
    try {
      const { type, body } = rendered ?? renderDefault(details);
      if (typeof type !== 'string' || !(typeof body === 'string' || body instanceof Uint8Array)) {
        throw new TypeError('render must return { type: string, body: string | Uint8Array } or undefined');
      }
      writeErrorResponse(settings, state, err, req, res, status, details.title, type, body);
    } catch (thrown) {
      fail(thrown);
    }
  };

  if (settings.render === undefined) {
    send(undefined);
    return;
  }
  let result: ReturnType<NonNullable<Settings['render']>>;
  try {
    result = settings.render(err, req, details);
    if (isThenable(result)) {
      // Promise.resolve adopts any thenable (another realm's promise,
      // Bluebird) and turns a `then` that throws into a rejection.
      Promise.resolve(result).then(send, fail);
      return;
    }
  } catch (thrown) {
    fail(thrown);
    return;
  }
  send(result);
}

function writeErrorResponse(
  settings: Settings,
  state: ResponseState,
  err: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  title: string,
  type: string,
  body: string | Uint8Array,
): void {
  // Nothing a stream still attached writes may follow the error body.
  for (const source of state.sources ?? []) source.unpipe(res);
  for (const name of STALE_HEADERS) res.removeHeader(name);
  applyErrorHeaders(res, err);
  vary(res, 'Accept');
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  res.setHeader('Content-Security-Policy', "default-src 'none'");
  res.setHeader('X-Content-Type-Options', 'nosniff');
  settleRequestBody(req, res, settings.drainLimit);
  res.statusCode = status;
  // HTTP/2 has neither reason phrases nor connection headers (Node's
  // compatibility API warns, or throws, on them); it ends streams, not connections.
  if (req.httpVersionMajor < 2) res.statusMessage = title;
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * `err.headers` (Retry-After, WWW-Authenticate, Cache-Control …), except those
 * that frame the body; each one skipped when Node refuses its name or value.
 */
function applyErrorHeaders(res: ServerResponse, err: unknown): void {
  const headers = err !== null && typeof err === 'object' ? (err as { headers?: unknown }).headers : undefined;
  if (headers === null || typeof headers !== 'object') return;
  for (const [name, value] of Object.entries(headers)) {
    if (BODY_HEADERS.has(name.toLowerCase())) continue;
    try {
      res.setHeader(name, value as string | number | readonly string[]);
    } catch {
      // An invalid header must not turn a proper 4xx into a bare 500.
    }
  }
}

/**
 * A request body nobody read keeps the connection from reaching the next
 * request. Up to `limit` bytes (a declared Content-Length) are read and
 * discarded; a larger body, one of unknown length, or one the client holds
 * back for `100-continue` closes the connection after the response instead.
 * Either way the response goes out now, not after the upload.
 */
function settleRequestBody(req: IncomingMessage, res: ServerResponse, limit: number): void {
  if (req.complete) return;
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const length = Number(req.headers['content-length'] ?? 0);
  // While the handler runs in the tick of the request head, `complete` is
  // still false even for a request without a body: only Content-Length or
  // Transfer-Encoding says there is one (RFC 9112, 6.3).
  if (!chunked && length === 0) return;
  const awaitsContinue = /100-continue/i.test(req.headers.expect ?? '');
  const tooMuch = chunked || !Number.isSafeInteger(length) || length > limit || awaitsContinue;
  if (tooMuch && req.httpVersionMajor < 2) res.setHeader('Connection', 'close');
  req.unpipe();
  req.resume();
}

function sendBare500(state: ResponseState, req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent || res.destroyed) {
    abort(state, res);
    return;
  }
  try {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = 500;
    if (req.httpVersionMajor < 2) res.statusMessage = 'Internal Server Error';
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(BARE_500));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Whatever went wrong may have left the request half-read.
    if (req.httpVersionMajor < 2) res.setHeader('Connection', 'close');
    req.unpipe();
    req.resume();
    if (req.method === 'HEAD') res.end();
    else res.end(BARE_500);
  } catch {
    abort(state, res);
  }
}

/** The status can no longer change: only a destroyed response tells the client it failed. */
function abort(state: ResponseState, res: ServerResponse): void {
  if (res.destroyed || res.writableEnded) return;
  state.destroyed = true;
  // Node's HTTP/2 compatibility response, destroyed, ends its stream with
  // NO_ERROR, which a client cannot tell from a complete response.
  const stream = (res as { stream?: Partial<Pick<Http2Stream, 'close'>> }).stream;
  if (typeof stream?.close === 'function') stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
  else res.destroy();
}

function report(settings: Settings, state: ResponseState, err: unknown, req: IncomingMessage, info: LogInfo): void {
  state.logged ??= new Set();
  if (state.logged.has(err)) return;
  state.logged.add(err);
  const failed = (cause: unknown) => {
    try {
      console.error(new LogFailedError(err, cause));
    } catch {
      // stderr itself failed: there is nowhere left to say so.
    }
  };
  try {
    const result = settings.log(err, req, info);
    if (isThenable(result)) Promise.resolve(result).then(undefined, failed);
  } catch (thrown) {
    failed(thrown);
  }
}

/** Whether `value` is a promise of any kind: an object or function with a `then` method. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

/** The default `log`: server errors to stderr, once, with method and URL. */
function logServerErrors(err: unknown, req: IncomingMessage, info: LogInfo): void {
  if (info.status < 500 || info.clientGone) return;
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url;
  const when = info.responseEnded ? ' (after the response had ended)' : info.headersSent ? ' (after headers were sent: response aborted)' : '';
  const what = err instanceof Error ? (err.stack ?? String(err)) : String(err);
  console.error(`${req.method} ${url} → ${info.status}${when}\n${what}`);
}

function validateOptions(options: ErrorHandlerOptions): Settings {
  if (options === null || typeof options !== 'object') throw invalidOption(`errorHandler options must be an object, got ${options === null ? 'null' : typeof options}`);
  const known = ['debug', 'expose', 'drainLimit', 'log', 'render'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw invalidOption(`unknown errorHandler option "${key}" (known: ${known.join(', ')})`);
  }
  const { debug = false, expose, drainLimit = '64kb', log = logServerErrors, render } = options;
  if (typeof debug !== 'boolean') throw invalidOption(`debug must be a boolean, got ${typeof debug}`);
  if (expose !== undefined && typeof expose !== 'boolean') throw invalidOption(`expose must be a boolean, got ${typeof expose}`);
  if (typeof log !== 'function') throw invalidOption(`log must be a function, got ${typeof log}`);
  if (render !== undefined && typeof render !== 'function') throw invalidOption(`render must be a function, got ${typeof render}`);
  return { debug, expose, drainLimit: parseSize(drainLimit), log, render };
}

function parseSize(value: unknown): number {
  // Trimmed: the pattern allows spaces around, and bytes.parse("64kb ") falls back to parseInt (64).
  const parsed = typeof value === 'number' ? value : typeof value === 'string' && SIZE.test(value) ? bytes.parse(value.trim()) : null;
  if (parsed === null || !Number.isFinite(parsed) || parsed < 0) {
    throw invalidOption(`drainLimit must be a number of bytes ≥ 0 or a size such as "64kb", got ${JSON.stringify(value)}`);
  }
  return Math.floor(parsed);
}

const SIZE = new RegExp(SIZE_PATTERN);
