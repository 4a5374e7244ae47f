// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.

/** The custom `render` option threw, rejected or returned something unusable; a bare 500 was sent instead. */
export class RenderFailedError extends Error {
  readonly code = 'UNBLOCK_ERR_ERROR_HANDLER_RENDER_FAILED';
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(
    /** The error that was being rendered. */
    readonly original: unknown,
    override readonly cause: unknown,
  ) {
    super(`the render option failed while rendering an error: ${describe(cause)}`);
    this.name = 'RenderFailedError';
  }
}

/** The `log` option threw or rejected. Written to stderr; the response is not affected. */
export class LogFailedError extends Error {
  readonly code = 'UNBLOCK_ERR_ERROR_HANDLER_LOG_FAILED';
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(
    /** The error that was being logged. */
    readonly original: unknown,
    override readonly cause: unknown,
  ) {
    super(`the log option failed while logging an error: ${describe(cause)}`);
    this.name = 'LogFailedError';
  }
}

/** A bad option to `errorHandler()`: thrown when the middleware is built, never at request time. */
export function invalidOption(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_ERROR_HANDLER_INVALID_OPTION' });
}

function describe(value: unknown): string {
  return value instanceof Error ? value.message : String(value);
}
