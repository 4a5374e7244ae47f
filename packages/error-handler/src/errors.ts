// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.

/** A hook of the error handler failed: the error it was handling is `original`, its own failure `cause`. */
export abstract class HookFailedError extends Error {
  abstract readonly code: string;
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(
    /** The error that was being handled. */
    readonly original: unknown,
    override readonly cause: unknown,
    hook: 'render' | 'log',
  ) {
    super(`the ${hook} option failed while ${hook === 'render' ? 'rendering' : 'logging'} an error: ${describe(cause)}`);
    this.name = new.target.name;
  }
}

/** The custom `render` option threw, rejected or returned something unusable; a bare 500 was sent instead. */
export class RenderFailedError extends HookFailedError {
  readonly code = 'UNBLOCK_ERR_ERROR_HANDLER_RENDER_FAILED';
  constructor(original: unknown, cause: unknown) {
    super(original, cause, 'render');
  }
}

/** The `log` option threw or rejected. Written to stderr; the response is not affected. */
export class LogFailedError extends HookFailedError {
  readonly code = 'UNBLOCK_ERR_ERROR_HANDLER_LOG_FAILED';
  constructor(original: unknown, cause: unknown) {
    super(original, cause, 'log');
  }
}

/** A bad option to `errorHandler()`: thrown when the middleware is built, never at request time. */
export function invalidOption(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_ERROR_HANDLER_INVALID_OPTION' });
}

function describe(value: unknown): string {
  return value instanceof Error ? value.message : String(value);
}
