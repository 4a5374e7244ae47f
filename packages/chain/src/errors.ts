// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.

/** `next()` was called a second time by the same middleware; the second call is ignored. */
export class NextCalledTwiceError extends Error {
  readonly code = 'UNBLOCK_ERR_CHAIN_NEXT_TWICE';
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(readonly middleware: string) {
    super(`next() was called more than once by middleware "${middleware}"; the extra call was ignored`);
    this.name = 'NextCalledTwiceError';
  }
}

/** A middleware threw, or its promise rejected, with a falsy value (`undefined`, `null`, `0` …). */
export class EmptyRejectionError extends Error {
  readonly code = 'UNBLOCK_ERR_CHAIN_EMPTY_REJECTION';
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

/** A middleware (or its promise) failed after it had already called `next()`: nobody is left to pass it to. */
export class ErrorAfterNextError extends Error {
  readonly code = 'UNBLOCK_ERR_CHAIN_ERROR_AFTER_NEXT';
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(
    readonly middleware: string,
    override readonly cause: unknown,
  ) {
    super(`middleware "${middleware}" failed after it had called next(): ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'ErrorAfterNextError';
  }
}

/** A bad argument to `chain()` or `use()`: thrown when the chain is built, never at request time. */
export function invalidArgument(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_CHAIN_INVALID_ARGUMENT' });
}

/** Warning code of the `blocking` report when no listener handles it. */
export const BLOCKING_WARNING_CODE = 'UNBLOCK_WARN_CHAIN_BLOCKING';
