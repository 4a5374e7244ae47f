// unblock inside Fastify 5 through @fastify/middie: which packages work there,
// how, and where the caveats are (README, Compatibility).
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it, type TestContext } from 'node:test';
import middie from '@fastify/middie';
import { chain, type Next } from '@unblock/chain';
import { errorHandler } from '@unblock/error-handler';
import { fromKoa } from '@unblock/koa';
import { waitForBody } from '@unblock/wait-for-body';
import { createPool, offload } from '@unblock/worker-pool';
import Fastify, { type FastifyInstance } from 'fastify';
import createError from 'http-errors';
import Koa from 'koa';

type WithBody = IncomingMessage & { body?: unknown };

const pool = createPool({ maxThreads: 1 });
after(() => pool.close());

/** A Fastify app with middie registered (in the default onRequest hook unless told). */
async function fastifyWithMiddie(hook?: 'preHandler'): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(middie, hook === undefined ? {} : { hook });
  return app;
}

async function listen(t: TestContext, app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

const postJson = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** The client must see the response fail, never complete; bounded so that a hang fails the test. */
const assertFails = (url: string) =>
  assert.rejects(
    async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await res.text();
    },
    (err: Error) => err.name !== 'TimeoutError' && err.name !== 'AbortError',
  );

/** A route whose body stream fails after its first chunk was sent. */
async function failingStream(_request: unknown, reply: { type(t: string): { send(body: Readable): unknown } }) {
  const body = new Readable({ read() {} });
  body.push('first chunk\n');
  setTimeout(() => body.destroy(new Error('disk went away')), 20);
  return reply.type('text/plain').send(body);
}

describe('Fastify 5 with @fastify/middie', () => {
  describe('@unblock/chain', () => {
    it('should run as global and prefixed middleware, its errors going to Fastify with their status', async (t) => {
      const app = await fastifyWithMiddie();
      app.use(
        chain((_req: IncomingMessage, res: ServerResponse, next: Next) => {
          res.setHeader('x-chain', 'yes');
          next();
        }),
      );
      app.use(
        '/fail',
        chain(async () => {
          throw Object.assign(createError(418, 'teapot'), { code: 'E_TEAPOT' });
        }),
      );
      app.get('/route', async () => ({ from: 'fastify' }));
      const url = await listen(t, app);
      const res = await fetch(`${url}/route`);
      assert.equal(res.headers.get('x-chain'), 'yes');
      assert.deepEqual(await res.json(), { from: 'fastify' });
      const failed = await fetch(`${url}/fail`);
      assert.equal(failed.status, 418);
      assert.equal(((await failed.json()) as { code: string }).code, 'E_TEAPOT');
    });
  });

  describe('@unblock/wait-for-body', () => {
    it("should read the body in middie's default onRequest hook, and replay it to Fastify's parser", async (t) => {
      const app = await fastifyWithMiddie();
      app.use(waitForBody({ limit: 1024 }));
      app.post('/echo', async (request) => ({ parsed: request.body, raw: String((request.raw as WithBody).body) }));
      const url = await listen(t, app);
      assert.deepEqual(await (await fetch(`${url}/echo`, postJson({ a: 1 }))).json(), { parsed: { a: 1 }, raw: '{"a":1}' });
      const tooLarge = await fetch(`${url}/echo`, postJson({ filler: 'x'.repeat(2048) }));
      assert.equal(tooLarge.status, 413);
      assert.equal(((await tooLarge.json()) as { code: string }).code, 'UNBLOCK_ERR_BODY_TOO_LARGE');
    });

    it("should leave alone, not hang on, the body Fastify has already parsed in middie's preHandler hook", async (t) => {
      const app = await fastifyWithMiddie('preHandler');
      app.use(waitForBody());
      app.post('/echo', async (request) => ({ parsed: request.body, raw: (request.raw as WithBody).body }));
      const url = await listen(t, app);
      const res = await fetch(`${url}/echo`, { ...postJson({ a: 1 }), signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200);
      // middie hands Fastify's parsed body to middleware as req.body; wait-for-body keeps it.
      assert.deepEqual(await res.json(), { parsed: { a: 1 }, raw: { a: 1 } });
    });
  });

  describe('@unblock/worker-pool', () => {
    it('should answer from a worker under a prefix, its errors going to Fastify with status and code', async (t) => {
      const app = await fastifyWithMiddie();
      app.use('/work', waitForBody());
      app.use('/work', offload(new URL('./fixtures/blocking-handler.js', import.meta.url), { pool }));
      app.get('/fast', async () => 'fast');
      const url = await listen(t, app);
      const res = await fetch(`${url}/work/item?x=1`, { method: 'POST', body: 'abc' });
      assert.equal(res.status, 200);
      assert.deepEqual(
        { ...((await res.json()) as Record<string, unknown>), hash: 'checked' },
        { url: '/item?x=1', originalUrl: '/work/item?x=1', bodyLength: 3, hash: 'checked', inWorker: true },
      );
      const failed = await fetch(`${url}/work/?fail=before`, { method: 'POST', body: 'abc' });
      assert.equal(failed.status, 422);
      assert.equal(((await failed.json()) as { code: string }).code, 'E_INPUT');
      await assertFails(`${url}/work/?fail=after`);
      assert.equal(await (await fetch(`${url}/fast`)).text(), 'fast');
    });
  });

  describe('@unblock/error-handler', () => {
    it("should render Fastify's errors through setErrorHandler with reply.hijack()", async (t) => {
      const logged: unknown[] = [];
      const errors = errorHandler({ log: (err) => logged.push(err) });
      const app = await fastifyWithMiddie();
      app.setErrorHandler((err, request, reply) => {
        reply.hijack();
        errors.terminal(err, request.raw, reply.raw, () => {});
      });
      app.use(errors);
      app.get('/conflict', async () => {
        throw createError(409, 'already there');
      });
      app.get('/stream', failingStream);
      const url = await listen(t, app);
      const res = await fetch(`${url}/conflict`, { headers: { accept: 'application/problem+json' } });
      assert.equal(res.status, 409);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(((await res.json()) as { detail: string }).detail, 'already there');
      await assertFails(`${url}/stream`);
      assert.equal(logged.length, 2);
    });
  });

  describe('Fastify alone', () => {
    it('should already destroy a response whose body stream fails', async (t) => {
      const app = Fastify();
      app.get('/stream', failingStream);
      const url = await listen(t, app);
      await assertFails(`${url}/stream`);
    });
  });

  describe('@unblock/koa fromKoa', () => {
    it('should serve a Koa app under a prefix, which answers its own 404s', async (t) => {
      const koa = new Koa();
      koa.use(async (ctx, next) => {
        if (ctx.path === '/items') ctx.body = { url: ctx.url };
        else await next();
      });
      const app = await fastifyWithMiddie();
      app.use('/koa', fromKoa(koa));
      app.get('/koa-fastify', async () => 'fastify');
      const url = await listen(t, app);
      assert.deepEqual(await (await fetch(`${url}/koa/items?x=1`)).json(), { url: '/items?x=1' });
      const missing = await fetch(`${url}/koa/other`);
      assert.equal(missing.status, 404);
      assert.equal(await missing.text(), 'Not Found');
      assert.equal(await (await fetch(`${url}/koa-fastify`)).text(), 'fastify');
    });
  });
});
