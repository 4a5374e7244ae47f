export { chain, isChain } from './chain.js';
export * from './errors.js';
export type { BlockingInfo, Chain, ChainItem, ChainOptions, ErrorMiddleware, Handler, Layer, Middleware, MiddlewareItem, Next } from './types.js';
