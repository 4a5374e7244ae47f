// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.

/** Base of this package's errors: an http-errors-shaped Error with a stable `code`. */
export class WorkerPoolError extends Error {
  readonly status: number;
  readonly statusCode: number;
  readonly expose: boolean;
  /** Extra response headers for error handlers that honour them (finalhandler, Express, `@unblock/error-handler`). */
  readonly headers?: Record<string, string>;

  constructor(
    readonly code: string,
    status: number,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.statusCode = status;
    this.expose = status < 500;
    if (options.headers) this.headers = options.headers;
  }
}

/** The pool's queue is full (`maxQueue` requests already wait): shed load instead of queueing without bound. */
export class QueueFullError extends WorkerPoolError {
  constructor(maxQueue: number, retryAfterSeconds: number) {
    super('UNBLOCK_ERR_POOL_QUEUE_FULL', 503, `the worker pool is saturated (${maxQueue} requests already waiting)`, {
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

/** `pool.close()` was called: in-flight work finishes, new work is refused. */
export class PoolClosedError extends WorkerPoolError {
  constructor(retryAfterSeconds: number) {
    super('UNBLOCK_ERR_POOL_CLOSED', 503, 'the worker pool is closed', {
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

/** The offloaded handler did not finish its response within `timeout` (queue wait included). */
export class HandlerTimeoutError extends WorkerPoolError {
  constructor(timeout: number) {
    super('UNBLOCK_ERR_POOL_TIMEOUT', 503, `the offloaded handler did not respond within ${timeout} ms`);
  }
}

/** The worker thread running the request died: `process.exit()`, an uncaught exception, out of memory. */
export class WorkerCrashedError extends WorkerPoolError {
  constructor(cause: unknown) {
    super('UNBLOCK_ERR_POOL_WORKER_CRASHED', 500, `the worker thread running the handler crashed: ${describe(cause)}`, { cause });
  }
}

/**
 * The pool's threads die before they can take any request, several times in
 * a row: `resourceLimits` too small for a thread to start, or the system
 * refuses new threads. New requests are refused for `retryAfter`, then the
 * pool tries again.
 */
export class WorkerStartError extends WorkerPoolError {
  constructor(cause: unknown, retryAfterSeconds: number) {
    super('UNBLOCK_ERR_POOL_WORKER_START', 503, `the worker pool's threads fail to start: ${describe(cause)}`, {
      cause,
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

/** The handler module could not be imported, or its exported `init()` failed. */
export class ModuleLoadError extends WorkerPoolError {
  constructor(module: string, cause: unknown) {
    super('UNBLOCK_ERR_POOL_MODULE_LOAD', 500, `could not load handler module ${module}: ${describe(cause)}`, { cause });
  }
}

/** The module's default export is not something `offload()` can run (see README, "Handler detection"). */
export class BadHandlerError extends WorkerPoolError {
  constructor(module: string, why: string) {
    super('UNBLOCK_ERR_POOL_BAD_HANDLER', 500, `the default export of ${module} ${why}`);
  }
}

/** A fetch-style handler returned (or resolved to) something that is not a `Response`. */
export class BadResponseError extends WorkerPoolError {
  constructor(got: unknown) {
    super('UNBLOCK_ERR_POOL_BAD_RESPONSE', 500, `the fetch-style handler returned ${describe(got)} instead of a Response`);
  }
}

/** A fetch-style handler's request names no host its `Request` URL can carry (see requestUrl() in handler.ts). */
export class BadUrlError extends WorkerPoolError {
  constructor(why: string) {
    super('UNBLOCK_ERR_POOL_BAD_URL', 400, `cannot build the URL of the fetch-style handler's Request: ${why}`);
  }
}

/** `forward(req)` threw, or returned a value that cannot be structured-cloned to the worker. */
export class ForwardError extends WorkerPoolError {
  constructor(cause: unknown) {
    super('UNBLOCK_ERR_POOL_FORWARD', 500, `forward(req) failed: ${describe(cause)}`, { cause });
  }
}

/** A bad option to `createPool()` or `offload()`: thrown when the middleware is built, never at request time. */
export function invalidOption(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_POOL_INVALID_OPTION' });
}

/** Warning code for a worker error no request can be blamed for (between requests, or while a thread started). */
export const WORKER_ERROR_WARNING_CODE = 'UNBLOCK_WARN_POOL_WORKER_ERROR';

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return String(value);
  return Object.prototype.toString.call(value);
}
