// The framework matrix of the integration tests: Express 4 and 5 with a
// middleware at app, router or route level; Koa 3 and 2; Connect 3.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express5, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import express4 from 'express4';
import Koa from 'koa';
import Koa2 from 'koa2';

export const expressVersions = [
  ['Express 4', express4],
  ['Express 5', express5],
] as const;

export const koaVersions = [
  ['Koa 3', Koa],
  ['Koa 2', Koa2],
] as const;

/** Where a middleware sits in an Express app. */
export const levels = ['app', 'router', 'route'] as const;
export type Level = (typeof levels)[number];

/** Connect-style middleware, as every unblock middleware is. */
export type ConnectMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => unknown;

export interface Mounted {
  app: Express;
  /** The path that reaches `handler` through `middleware`. */
  path: string;
}

/**
 * An Express app where `before` runs at `level` in front of `handler`, for
 * every method at the returned path, and `after` (error middleware, say)
 * behind it at the same level: app level (`app.use`), router level
 * (`router.use`, the router mounted at `/r`), or route level
 * (`app.all(path, ...before, handler, ...after)`).
 */
export function expressWith(
  express: typeof express5,
  level: Level,
  before: ConnectMiddleware | ConnectMiddleware[],
  handler: RequestHandler,
  ...after: Array<RequestHandler | ErrorRequestHandler>
): Mounted {
  const app = express();
  const first = ([] as ConnectMiddleware[]).concat(before) as RequestHandler[];
  let path = '/target';
  if (level === 'app') {
    if (first.length > 0) app.use(...first);
    app.all(path, handler);
    if (after.length > 0) app.use(...after);
  } else if (level === 'router') {
    const router = express.Router();
    if (first.length > 0) router.use(...first);
    router.all(path, handler);
    if (after.length > 0) router.use(...after);
    app.use('/r', router);
    path = `/r${path}`;
  } else {
    app.all(path, ...first, handler, ...(after as RequestHandler[]));
  }
  return { app, path };
}

/** An Express error middleware that answers `caught <status> <code>` with the error's status, and records the error. */
export function expressErrorRecorder(): { seen: unknown[]; handler: ErrorRequestHandler } {
  const seen: unknown[] = [];
  return {
    seen,
    handler: (err, _req, res, _next) => {
      seen.push(err);
      const { status = 500, code } = err as { status?: number; code?: string };
      res.status(status).type('text').send(`caught ${status} ${code ?? ''}`.trim());
    },
  };
}

/** Errors Koa reports on its app's `error` event, collected instead of logged. */
export function koaErrors(app: Koa): unknown[] {
  const errors: unknown[] = [];
  app.on('error', (err: unknown) => errors.push(err));
  return errors;
}
