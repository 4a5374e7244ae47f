// Type tests: `npm test` checks this file with `tsc -p tsconfig.test.json`
// (it is never run); each @ts-expect-error fails the check if a type loosens.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express from 'express';
import { chain, type BlockingInfo, type Chain, type ErrorMiddleware, type Handler, type Middleware, type Next } from '../src/index.js';

interface AuthedRequest extends IncomingMessage {
  user?: { id: string };
}

function expectType<T>(value: T): T {
  return value;
}

export function typeTests(): void {
  const plain = chain();
  expectType<Chain<IncomingMessage, ServerResponse>>(plain);
  expectType<(req: IncomingMessage, res: ServerResponse) => void>(plain);
  expectType<Middleware>(plain);
  expectType<Parameters<typeof createServer>[1]>(plain);

  const authed = chain<AuthedRequest>((req, _res, next) => {
    expectType<{ id: string } | undefined>(req.user);
    next();
  });
  authed.use('/me', (req: AuthedRequest, res: ServerResponse) => res.end(req.user?.id));
  // @ts-expect-error a middleware for a narrower request does not fit a chain of plain requests
  chain((req: AuthedRequest & { session: string }, _res: ServerResponse, next: Next) => next(req.session));

  const errorMiddleware: ErrorMiddleware = (err, _req, res, _next) => res.end(String(err));
  const handler: Handler = (_req, res) => res.end();
  const server: Server = chain(errorMiddleware, handler, [handler]).listen(0);
  server.close();

  plain.on('blocking', (info, req, res) => {
    expectType<BlockingInfo>(info);
    expectType<IncomingMessage>(req);
    expectType<ServerResponse>(res);
  });
  // @ts-expect-error blockingThreshold is a number of milliseconds
  chain({ blockingThreshold: '20ms' });
  // @ts-expect-error use() takes middleware, not numbers
  plain.use(42);

  // Express apps and Express-typed middleware go into a chain, and a chain into Express.
  const app = express();
  plain.use(app);
  app.use(plain);

  // Inline middleware gets its parameter types from the chain.
  chain((req, res, next) => {
    expectType<IncomingMessage>(req);
    expectType<ServerResponse>(res);
    expectType<Next>(next);
  });
  // Error middleware is annotated, or typed through ErrorMiddleware.
  plain.use(errorMiddleware, (err: unknown, _req: IncomingMessage, res: ServerResponse, next: Next) => (res.headersSent ? next(err) : res.end()));
}
