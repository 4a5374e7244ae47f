export { waitForBody, type RequestWithBody, type WaitForBodyMiddleware } from './wait-for-body.js';
export type { WaitForBodyOptions } from './options.js';
export { optionsSchema } from './schema.js';
export {
  BodyAbortedError,
  BodyAlreadyReadError,
  BodyError,
  BodyInflateError,
  BodyLengthMismatchError,
  BodyStreamEncodingError,
  BodyTimeoutError,
  BodyTooLargeError,
  BodyVerifyError,
  UnsupportedCharsetError,
  UnsupportedContentEncodingError,
} from './errors.js';
