// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them — Koa's own included.
// See README, Errors.

/** What every error of the adapter carries: a stable code, a status, and the middleware at fault. */
export abstract class KoaAdapterError extends Error {
  abstract readonly code: string;
  readonly expose = false;
  readonly statusCode: number;
  constructor(
    readonly middleware: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.statusCode = status;
    this.name = new.target.name;
  }
}

/**
 * A middleware run by `toKoa` neither called `next` nor started a response
 * within `timeout` milliseconds. 503, as connect-timeout answers: the request
 * is given up on, the server is not broken.
 */
export class NoResponseError extends KoaAdapterError {
  readonly code = 'UNBLOCK_ERR_KOA_NO_RESPONSE';
  constructor(
    middleware: string,
    readonly timeout: number,
  ) {
    super(middleware, 503, `middleware "${middleware}" neither called next() nor started a response within ${timeout} ms`);
  }
}

/** A middleware threw, or its promise rejected, with a falsy value (`undefined`, `null`, `0` …). */
export class EmptyRejectionError extends KoaAdapterError {
  readonly code = 'UNBLOCK_ERR_KOA_EMPTY_REJECTION';
  constructor(
    middleware: string,
    readonly reason: unknown,
  ) {
    super(middleware, 500, `middleware "${middleware}" threw or rejected with ${String(reason)} instead of an Error`);
  }
}

/** `next()` was called a second time by the same middleware; the second call is ignored and reported. */
export class NextCalledTwiceError extends KoaAdapterError {
  readonly code = 'UNBLOCK_ERR_KOA_NEXT_TWICE';
  constructor(middleware: string) {
    super(middleware, 500, `next() was called more than once by middleware "${middleware}"; the extra call was ignored`);
  }
}

/** A bad argument to `toKoa()` or `fromKoa()`: thrown when the middleware is built, never at request time. */
export function invalidArgument(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_KOA_INVALID_ARGUMENT' });
}
