// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.

/** What every error of the chain carries: a stable code, a status (500 unless said), and the middleware at fault. */
export abstract class ChainError extends Error {
  abstract readonly code: string;
  readonly status: number = 500;
  readonly statusCode: number = 500;
  readonly expose: boolean = false;
  constructor(
    readonly middleware: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** `next()` was called a second time by the same middleware; the second call is ignored. */
export class NextCalledTwiceError extends ChainError {
  readonly code = 'UNBLOCK_ERR_CHAIN_NEXT_TWICE';
  constructor(middleware: string) {
    super(middleware, `next() was called more than once by middleware "${middleware}"; the extra call was ignored`);
  }
}

/** A middleware threw, or its promise rejected, with a falsy value (`undefined`, `null`, `0` …). */
export class EmptyRejectionError extends ChainError {
  readonly code = 'UNBLOCK_ERR_CHAIN_EMPTY_REJECTION';
  constructor(
    middleware: string,
    readonly reason: unknown,
  ) {
    super(middleware, `middleware "${middleware}" threw or rejected with ${String(reason)} instead of an Error`);
  }
}

/** A middleware (or its promise) failed after it had already called `next()`: nobody is left to pass it to. */
export class ErrorAfterNextError extends ChainError {
  readonly code = 'UNBLOCK_ERR_CHAIN_ERROR_AFTER_NEXT';
  constructor(middleware: string, cause: unknown) {
    super(middleware, `middleware "${middleware}" failed after it had called next(): ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * The request path has dot segments together with `//`, `%2F`, `\` or `%5C`,
 * which servers resolve in different ways, and a mount it does not match as
 * sent cannot tell whether it is inside: the request is refused with 400.
 */
export class AmbiguousPathError extends ChainError {
  readonly code = 'UNBLOCK_ERR_CHAIN_AMBIGUOUS_PATH';
  override readonly status = 400;
  override readonly statusCode = 400;
  // A client error, with a message that holds nothing of the request: safe to show (http-errors' rule for 4xx).
  override readonly expose = true;
  constructor(middleware: string) {
    super(middleware, 'the request path has dot segments together with //, %2F, \\ or %5C, which servers resolve in different ways');
  }
}

/** A bad argument to `chain()` or `use()`: thrown when the chain is built, never at request time. */
export function invalidArgument(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_CHAIN_INVALID_ARGUMENT' });
}

/** Warning code of the `blocking` report when no listener handles it. */
export const BLOCKING_WARNING_CODE = 'UNBLOCK_WARN_CHAIN_BLOCKING';
