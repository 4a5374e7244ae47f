import type { IncomingMessage, ServerResponse } from 'node:http';
import { EmptyRejectionError, NextCalledTwiceError, NoResponseError, invalidArgument } from './errors.js';
import type { ErrorMiddleware, KoaContextLike, KoaMiddleware, KoaNext, Middleware, Next, ToKoaOptions } from './types.js';

/** Node's own `server.requestTimeout`: long enough for slow uploads and offloaded work, still a bound. */
const DEFAULT_TIMEOUT = 300_000;
/** setTimeout fires at once for larger delays. */
const MAX_TIMEOUT = 2 ** 31 - 1;

/**
 * Runs a Connect-style middleware (`(req, res, next)`, or an error middleware
 * `(err, req, res, next)`) as a Koa middleware.
 *
 * ```js
 * app.use(toKoa(waitForBody({ limit: '1mb' })));
 * ```
 */
export function toKoa<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  middleware: Middleware<Req, Res>,
  options?: ToKoaOptions,
): KoaMiddleware;
export function toKoa<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  middleware: ErrorMiddleware<Req, Res>,
  options?: ToKoaOptions,
): KoaMiddleware;
export function toKoa(middleware: Middleware | ErrorMiddleware, options: ToKoaOptions = {}): KoaMiddleware {
  if (typeof middleware !== 'function') {
    throw invalidArgument(`toKoa() takes a Connect-style middleware function, got ${middleware === null ? 'null' : typeof middleware}`);
  }
  const timeout = validateOptions(options);
  const name = middleware.name || 'anonymous';

  // Four parameters mark an error middleware, as in Connect and Express. In
  // Koa the errors come back up from downstream, so it runs around `next`.
  if (middleware.length === 4) {
    const handleError = middleware as ErrorMiddleware;
    return async function errorMiddlewareInKoa(ctx, next) {
      try {
        await next();
      } catch (err) {
        // Calling next() without an error would mean "resume normal handling",
        // but downstream has already run: the original error goes on up
        // rather than turning into whatever status ctx happens to hold.
        await run(ctx, name, timeout, (done) => handleError(err, ctx.req, ctx.res, done), () => Promise.reject(err));
      }
    };
  }
  const handle = middleware as Middleware;
  return function middlewareInKoa(ctx, next) {
    return run(ctx, name, timeout, (done) => handle(ctx.req, ctx.res, done), next);
  };
}

/**
 * Calls the middleware and settles once it has decided, whichever comes first:
 * - it calls `next()`: Koa's downstream runs and is awaited;
 * - it calls `next(err)`, throws or rejects: `err` goes into Koa's error flow;
 * - its response finishes, or the connection closes: `ctx.respond = false`,
 *   so Koa does not answer a second time;
 * - `timeout` passes with none of these and no response started: 503.
 * Whatever the middleware does after that is ignored; its errors are
 * reported on `ctx.app`'s `error` event, where Koa logs its own.
 */
function run(ctx: KoaContextLike, name: string, timeout: number, call: (next: Next) => unknown, proceed: KoaNext): Promise<void> {
  const res = ctx.res;
  const req = ctx.req as IncomingMessage & { body?: unknown; originalUrl?: string };
  // Express-style middleware read req.originalUrl; Koa keeps it on ctx only.
  req.originalUrl ??= ctx.originalUrl;
  const bodyBefore = req.body;
  // Koa sets res.statusCode = 404 before any middleware runs. Connect-style
  // code expects Node's 200 there: it reads it, and answers with it when it
  // ends the response without choosing a status.
  const koaPreset404 = res.statusCode === 404 && !res.headersSent && (ctx.response as { _explicitStatus?: boolean })._explicitStatus !== true;
  if (koaPreset404) res.statusCode = 200;

  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let nextCalls = 0;
    // The watch on the response and the timer are set only when the
    // middleware returns without having decided: most call next() at once.
    let watching = false;
    let timer: NodeJS.Timeout | undefined;

    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      if (watching) {
        clearTimeout(timer);
        res.off('finish', onResponseOver);
        res.off('close', onResponseOver);
      }
      return true;
    };
    // Back to Koa with nothing sent yet: Koa's 404 again unless the middleware chose a status.
    const handBack = () => {
      if (!koaPreset404 || res.headersSent) return;
      if (res.statusCode === 200) res.statusCode = 404;
      else ctx.status = res.statusCode;
    };
    function onResponseOver() {
      if (!settle()) return;
      ctx.respond = false;
      resolve();
    }
    const onTimeout = () => {
      // A started response is the middleware answering: wait for its end instead.
      if (res.headersSent) return;
      settle();
      handBack();
      reject(new NoResponseError(name, timeout));
    };
    const fail = (err: unknown) => {
      if (!settle()) {
        report(ctx, err);
        return;
      }
      if (res.headersSent) {
        // The status can no longer change: a destroyed response tells the
        // client it failed, where Koa would leave the socket open.
        ctx.respond = false;
        if (!res.writableEnded) res.destroy();
      } else {
        handBack();
      }
      reject(err);
    };
    const next: Next = (err) => {
      if (++nextCalls > 1) {
        report(ctx, new NextCalledTwiceError(name));
        return;
      }
      if (err) {
        fail(err);
        return;
      }
      if (!settle()) return;
      handBack();
      // Whatever body the middleware put on req (wait-for-body, body-parser) is where Koa code looks for it.
      if (req.body !== bodyBefore) ctx.request.body = req.body;
      proceed().then(() => resolve(), reject);
    };

    try {
      const result = call(next);
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, (reason: unknown) => fail(reason || new EmptyRejectionError(name, reason)));
      }
    } catch (thrown) {
      fail(thrown || new EmptyRejectionError(name, thrown));
    }
    if (settled) return;
    // 'finish' and 'close' are emitted asynchronously, so none was missed
    // during the call; a response over before it began is caught here.
    if (res.writableFinished || res.destroyed) {
      onResponseOver();
      return;
    }
    watching = true;
    res.once('finish', onResponseOver);
    res.once('close', onResponseOver);
    if (timeout > 0) timer = setTimeout(onTimeout, timeout);
  });
}

/** Errors nobody is waiting for any more go where Koa reports its own. */
function report(ctx: KoaContextLike, err: unknown): void {
  // Koa 3's default listener throws on anything that is not an Error.
  ctx.app.emit('error', err instanceof Error ? err : new Error(`non-error thrown: ${String(err)}`), ctx);
}

function validateOptions(options: ToKoaOptions): number {
  if (options === null || typeof options !== 'object') throw invalidArgument(`toKoa() options must be an object, got ${options === null ? 'null' : typeof options}`);
  for (const key of Object.keys(options)) {
    if (key !== 'timeout') throw invalidArgument(`unknown toKoa() option "${key}" (known: timeout)`);
  }
  const { timeout = DEFAULT_TIMEOUT } = options;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 || timeout > MAX_TIMEOUT) {
    throw invalidArgument(`timeout must be an integer number of milliseconds from 0 (off) to ${MAX_TIMEOUT}, got ${String(timeout)}`);
  }
  return timeout;
}
