export { toKoa } from './to-koa.js';
export { fromKoa } from './from-koa.js';
export * from './errors.js';
export type { ErrorMiddleware, Handler, KoaAppLike, KoaContextLike, KoaMiddleware, KoaNext, Middleware, Next, ToKoaOptions } from './types.js';
