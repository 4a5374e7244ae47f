// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them — Koa's own included.
// See README, Errors.

/**
 * A middleware run by `toKoa` neither called `next` nor started a response
 * within `timeout` milliseconds. 503, as connect-timeout answers: the request
 * is given up on, the server is not broken.
 */
export class NoResponseError extends Error {
  readonly code = 'UNBLOCK_ERR_KOA_NO_RESPONSE';
  readonly status = 503;
  readonly statusCode = 503;
  readonly expose = false;
  constructor(
    readonly middleware: string,
    readonly timeout: number,
  ) {
    super(`middleware "${middleware}" neither called next() nor started a response within ${timeout} ms`);
    this.name = 'NoResponseError';
  }
}

/** A middleware threw, or its promise rejected, with a falsy value (`undefined`, `null`, `0` …). */
export class EmptyRejectionError extends Error {
  readonly code = 'UNBLOCK_ERR_KOA_EMPTY_REJECTION';
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(
    readonly middleware: string,
    readonly reason: unknown,
  ) {
    super(`middleware "${middleware}" threw or rejected with ${String(reason)} instead of an Error`);
    this.name = 'EmptyRejectionError';
  }
}

/** `next()` was called a second time by the same middleware; the second call is ignored and reported. */
export class NextCalledTwiceError extends Error {
  readonly code = 'UNBLOCK_ERR_KOA_NEXT_TWICE';
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(readonly middleware: string) {
    super(`next() was called more than once by middleware "${middleware}"; the extra call was ignored`);
    this.name = 'NextCalledTwiceError';
  }
}

/** A bad argument to `toKoa()` or `fromKoa()`: thrown when the middleware is built, never at request time. */
export function invalidArgument(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_KOA_INVALID_ARGUMENT' });
}
