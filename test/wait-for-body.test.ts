// @unblock/wait-for-body with the frameworks users already have: inside
// Express 4/5 (app, router and route level) with Express's error handler and
// with @unblock/error-handler, before Express's own body parser, inside
// Connect 3, and inside Koa 2/3 through toKoa.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { errorHandler } from '@unblock/error-handler';
import { toKoa } from '@unblock/koa';
import { waitForBody } from '@unblock/wait-for-body';
import connect from 'connect';
import { expressErrorRecorder, expressVersions, expressWith, koaErrors, koaVersions, levels } from './support/frameworks.js';
import { serve } from './support/http.js';

type WithBody = IncomingMessage & { body?: unknown };

const order = { items: [{ sku: 'a-1', qty: 2 }] };
const postJson = (body: unknown = order): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/problem+json' },
  body: JSON.stringify(body),
});
const oversized = () => postJson({ filler: 'x'.repeat(2048) });

/** Synchronous code, as a blocking handler is: it trusts req.body to be all there. */
const echoSync = (req: IncomingMessage, res: ServerResponse) => {
  const body = (req as WithBody).body;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ isBuffer: Buffer.isBuffer(body), parsed: JSON.parse(String(body)) }));
};

for (const [version, express] of expressVersions) {
  describe(`@unblock/wait-for-body inside ${version}`, () => {
    for (const level of levels) {
      describe(`at ${level} level`, () => {
        it('should give synchronous code the whole body as req.body', async (t) => {
          const { app, path } = expressWith(express, level, waitForBody(), echoSync);
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}`, postJson());
          assert.deepEqual(await res.json(), { isBuffer: true, parsed: order });
        });

        it("should leave the body readable again for Express's own JSON parser", async (t) => {
          const { app, path } = expressWith(express, level, [waitForBody(), express.json()], (req, res) => {
            res.json({ parsed: req.body });
          });
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}`, postJson());
          assert.deepEqual(await res.json(), { parsed: order });
        });

        it("should pass 413 UNBLOCK_ERR_BODY_TOO_LARGE to Express's default and custom error handlers", async (t) => {
          const plain = expressWith(express, level, waitForBody({ limit: 1024 }), echoSync);
          const recorder = expressErrorRecorder();
          const custom = expressWith(express, level, waitForBody({ limit: 1024 }), echoSync, recorder.handler);
          const first = await serve(t, plain.app);
          const second = await serve(t, custom.app);
          const res = await fetch(`${first.url}${plain.path}`, oversized());
          assert.equal(res.status, 413);
          await res.arrayBuffer();
          const handled = await fetch(`${second.url}${custom.path}`, oversized());
          assert.equal(handled.status, 413);
          assert.equal(await handled.text(), 'caught 413 UNBLOCK_ERR_BODY_TOO_LARGE');
        });

        it('should have its errors rendered by @unblock/error-handler', async (t) => {
          const errors = errorHandler({ log: () => {} });
          const { app, path } = expressWith(express, level, [errors, waitForBody({ limit: 1024 })], echoSync, errors.terminal);
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}`, oversized());
          assert.equal(res.status, 413);
          const problem = (await res.json()) as { status: number; code: string };
          assert.equal(problem.status, 413);
          assert.equal(problem.code, 'UNBLOCK_ERR_BODY_TOO_LARGE');
          // The connection is still good for the next request.
          assert.deepEqual(await (await fetch(`${url}${path}`, postJson())).json(), { isBuffer: true, parsed: order });
        });
      });
    }
  });
}

describe('@unblock/wait-for-body inside Connect 3', () => {
  it('should give the next middleware the whole body, and its errors to Connect', async (t) => {
    const app = connect();
    app.use('/orders', waitForBody({ limit: 1024 }));
    app.use('/orders', echoSync);
    const { url } = await serve(t, app);
    assert.deepEqual(await (await fetch(`${url}/orders`, postJson())).json(), { isBuffer: true, parsed: order });
    const res = await fetch(`${url}/orders`, oversized());
    assert.equal(res.status, 413);
    await res.arrayBuffer();
  });
});

for (const [version, Koa] of koaVersions) {
  describe(`@unblock/wait-for-body inside ${version} through toKoa`, () => {
    it('should put the whole body on ctx.request.body', async (t) => {
      const app = new Koa();
      app.use(toKoa(waitForBody()));
      app.use((ctx) => {
        const body = (ctx.request as { body?: unknown }).body;
        ctx.body = { isBuffer: Buffer.isBuffer(body), parsed: JSON.parse(String(body)) };
      });
      const { url } = await serve(t, app.callback());
      assert.deepEqual(await (await fetch(url, postJson())).json(), { isBuffer: true, parsed: order });
    });

    it("should send its errors into Koa's error flow with their status and code", async (t) => {
      const app = new Koa();
      const reported = koaErrors(app);
      app.use(toKoa(waitForBody({ limit: 1024 })));
      app.use((ctx) => {
        ctx.body = 'not reached';
      });
      const { url } = await serve(t, app.callback());
      const res = await fetch(url, oversized());
      assert.equal(res.status, 413);
      await res.arrayBuffer();
      assert.equal((reported[0] as { code?: string }).code, 'UNBLOCK_ERR_BODY_TOO_LARGE');
    });

    it('should have its errors rendered by @unblock/error-handler', async (t) => {
      const errors = errorHandler({ log: () => {} });
      const app = new Koa();
      app.use(toKoa(errors.terminal));
      app.use(toKoa(waitForBody({ limit: 1024 })));
      app.use((ctx) => {
        ctx.body = 'not reached';
      });
      const { url } = await serve(t, app.callback());
      const res = await fetch(url, oversized());
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as { code: string }).code, 'UNBLOCK_ERR_BODY_TOO_LARGE');
    });
  });
}
