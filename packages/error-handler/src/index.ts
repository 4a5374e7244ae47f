export { errorHandler } from './error-handler.js';
export { optionsSchema } from './schema.js';
export * from './errors.js';
export type { ErrorDetails, ErrorHandler, ErrorHandlerOptions, ErrorMediaType, LogInfo, RenderedError, TerminalErrorHandler } from './types.js';
