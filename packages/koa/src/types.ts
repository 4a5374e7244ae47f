import type { IncomingMessage, ServerResponse } from 'node:http';

// Structural types: the declarations of this package do not depend on
// @types/koa, and a Koa 2 or Koa 3 context (typed or not) fits them.

/** What `toKoa` uses of a Koa context. */
export interface KoaContextLike {
  req: IncomingMessage;
  res: ServerResponse;
  originalUrl: string;
  /** Set to `false` once the wrapped middleware has answered, so that Koa does not answer again. */
  respond?: boolean | undefined;
  request: { body?: unknown };
  response: object;
  status: number;
  app: { emit(event: string, ...args: any[]): boolean };
}

/** Koa's `next`: runs the downstream middleware. */
export type KoaNext = () => Promise<unknown>;

/** A Koa middleware as `toKoa` returns it. */
export type KoaMiddleware = (ctx: KoaContextLike, next: KoaNext) => Promise<void>;

/** What `fromKoa` uses of a Koa application. */
export interface KoaAppLike {
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
}

/** Passes control on: with no argument (or a falsy one) to the next middleware, with an error to the error flow. */
export type Next = (err?: unknown) => void;

/** Connect-style middleware. It may return a promise: a rejection goes down the error flow. */
export type Middleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
  next: Next,
) => unknown;

/** Connect-style error middleware, told apart by its four parameters (as in Connect and Express). */
export type ErrorMiddleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  err: unknown,
  req: Req,
  res: Res,
  next: Next,
) => unknown;

/** A plain request handler, as given to `http.createServer`, an unblock chain, Express or Connect. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ToKoaOptions {
  /**
   * Milliseconds the middleware has to call `next` or start its response;
   * after that the request fails with 503 `UNBLOCK_ERR_KOA_NO_RESPONSE`.
   * Once the response has started it is waited for until it finishes or the
   * connection closes. `0` turns the bound off. Default `300000` (5 minutes,
   * Node's own `server.requestTimeout`).
   */
  timeout?: number;
}
