// Type tests: `npm test` checks this file with `tsc -p tsconfig.test.json`
// (it is never run); each @ts-expect-error fails the check if a type loosens.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chain } from '@unblock/chain';
import express from 'express';
import { BodyError, BodyTooLargeError, optionsSchema, waitForBody, type RequestWithBody, type WaitForBodyMiddleware, type WaitForBodyOptions } from '../src/index.js';

function expectType<T>(value: T): T {
  return value;
}

export function typeTests(): void {
  const middleware = waitForBody({ limit: '1mb', type: ['json'], verify: (_req, _res, buf, encoding) => void expectType<[Buffer, string | null]>([buf, encoding]) });
  expectType<WaitForBodyMiddleware>(middleware);
  expectType<(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void>(middleware);

  // It fits Express, an unblock chain, and async verifiers.
  express().use(middleware);
  express().post('/x', waitForBody(), (req, res) => res.send(req.body));
  chain(middleware, (req, res) => res.end((req as RequestWithBody).body));
  waitForBody({ verify: async () => {} });
  waitForBody({ type: (req) => req.headers['content-type'] === 'text/csv' });

  const request = {} as RequestWithBody<string>;
  expectType<string>(request.body);
  expectType<IncomingMessage>(request);

  const err: unknown = new BodyTooLargeError(1, 2);
  if (err instanceof BodyError) {
    expectType<string>(err.code);
    expectType<number>(err.status);
    expectType<boolean>(err.expose);
  }

  expectType<false>(optionsSchema.additionalProperties);
  const options: WaitForBodyOptions = { timeout: '5s', drainLimit: 0, encoding: 'latin1' };
  waitForBody(options);
  // @ts-expect-error inflate is a boolean
  waitForBody({ inflate: 'gzip' });
  // @ts-expect-error verify is a function
  waitForBody({ verify: 'hmac' });
  // @ts-expect-error an unknown option is caught by the type too
  waitForBody({ limits: '1mb' });
}
