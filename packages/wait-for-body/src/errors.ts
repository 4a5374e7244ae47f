// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.
// `type` repeats body-parser's `err.type` where body-parser has the same
// failure, so error handlers written for body-parser keep working.

/** What every error passed to `next(err)` by `waitForBody` has in common. */
export abstract class BodyError extends Error {
  abstract readonly code: string;
  /** body-parser's name for the same failure (`entity.too.large` …). */
  abstract readonly type: string;
  readonly status: number;
  readonly statusCode: number;
  /** True for 4xx: the message is written for the client and safe to show. */
  readonly expose: boolean;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.statusCode = status;
    this.expose = status < 500;
    this.name = new.target.name;
  }
}

/** The body (decoded, or on the wire) is larger than `limit`. */
export class BodyTooLargeError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_TOO_LARGE';
  readonly type = 'entity.too.large';
  /**
   * @param limit the `limit` option, in bytes
   * @param received the bytes seen when the limit was crossed, or the declared Content-Length when it was refused before reading
   */
  constructor(
    readonly limit: number,
    readonly received: number,
  ) {
    super(413, `request body is larger than the limit of ${limit} bytes`);
  }
}

/** The client ended the body (closed its side of the connection) before it had sent what it announced. */
export class BodyLengthMismatchError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_LENGTH_MISMATCH';
  readonly type = 'request.size.invalid';
  /**
   * @param expected the declared Content-Length, or null for a chunked body
   * @param received the bytes received before the body ended
   */
  constructor(
    readonly expected: number | null,
    readonly received: number,
  ) {
    super(400, expected === null ? 'request body ended before its last chunk' : `request body ended after ${received} of ${expected} bytes`);
  }
}

/** The request has a Content-Encoding this middleware cannot (or, with `inflate: false`, may not) decode. */
export class UnsupportedContentEncodingError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_ENCODING_UNSUPPORTED';
  readonly type = 'encoding.unsupported';
  constructor(readonly encoding: string) {
    super(415, `unsupported content encoding "${encoding}"`);
  }
}

/** The request declares a charset that cannot be decoded (only when `encoding` asks for a string). */
export class UnsupportedCharsetError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_CHARSET_UNSUPPORTED';
  readonly type = 'charset.unsupported';
  constructor(readonly charset: string) {
    super(415, `unsupported charset "${charset.toUpperCase()}"`);
  }
}

/** The compressed body is corrupt or truncated. */
export class BodyInflateError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_INFLATE_FAILED';
  readonly type = 'entity.inflate.failed';
  constructor(
    readonly encoding: string,
    cause: unknown,
  ) {
    super(400, `request body is not valid ${encoding} data`, { cause });
  }
}

/**
 * The `verify` option threw or rejected. The status is 403, or the thrown
 * error's own 4xx/5xx `status` when it has one (as in body-parser).
 */
export class BodyVerifyError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_VERIFY_FAILED';
  readonly type = 'entity.verify.failed';
  constructor(cause: unknown) {
    const own = (cause as { status?: unknown; statusCode?: unknown } | null)?.status ?? (cause as { statusCode?: unknown } | null)?.statusCode;
    const status = typeof own === 'number' && Number.isInteger(own) && own >= 400 && own < 600 ? own : 403;
    // A 4xx message is shown to the client: say what the verifier said only when it chose the status itself.
    super(status, status === own && cause instanceof Error ? cause.message : 'request body failed verification', { cause });
  }
}

/** The whole body did not arrive within `timeout`. */
export class BodyTimeoutError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_TIMEOUT';
  readonly type = 'request.timeout';
  constructor(
    readonly timeout: number,
    readonly received: number,
  ) {
    super(408, `request body did not arrive within ${timeout} ms`);
  }
}

/** The client went away (connection reset) while sending the body. No response can reach it. */
export class BodyAbortedError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_ABORTED';
  readonly type = 'request.aborted';
  constructor(readonly received: number) {
    super(400, 'request aborted by the client');
  }
}

/**
 * Something read the body stream before this middleware, so its bytes are
 * gone. Put `waitForBody` before whatever reads the body.
 */
export class BodyAlreadyReadError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_ALREADY_READ';
  readonly type = 'stream.not.readable';
  constructor() {
    super(500, 'the request body was already read by an earlier middleware');
  }
}

/** `req.setEncoding()` was called before this middleware: the body would arrive as text, not bytes. */
export class BodyStreamEncodingError extends BodyError {
  readonly code = 'UNBLOCK_ERR_BODY_STREAM_ENCODING_SET';
  readonly type = 'stream.encoding.set';
  constructor() {
    super(500, 'req.setEncoding() was called before the body was read');
  }
}

/** A bad option to `waitForBody()`: thrown when the middleware is built, never at request time. */
export function invalidOption(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_BODY_INVALID_OPTION' });
}
