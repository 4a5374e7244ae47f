// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.
export * from './errors.js';
export { createPool } from './pool.js';
export type { HistogramSummary, Pool, PoolOptions, PoolStats } from './pool.js';
export { offload } from './offload.js';
export type { OffloadMiddleware, OffloadOptions } from './offload.js';
export { optionsSchema, poolOptionsSchema } from './options.js';
export type { Duration, Size } from './options.js';
export { detectKind } from './handler.js';
export type { HandlerKind } from './protocol.js';
