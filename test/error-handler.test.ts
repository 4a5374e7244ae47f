// @unblock/error-handler with the frameworks users already have: inside
// Express 4/5 (app, router and route level) beside Express's own error
// handler or in its place, around a whole Express app in a chain, inside
// Connect 3, and inside Koa 2/3 through toKoa.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { chain } from '@unblock/chain';
import { errorHandler } from '@unblock/error-handler';
import { toKoa } from '@unblock/koa';
import connect from 'connect';
import type { RequestHandler } from 'express';
import createError from 'http-errors';
import { expressVersions, expressWith, koaErrors, koaVersions, levels } from './support/frameworks.js';
import { serve } from './support/http.js';

const problemJson = { accept: 'application/problem+json' };
/** Bounds a read that must fail, so that a hang fails the test instead of stalling it. */
const bounded = () => AbortSignal.timeout(5000);

/** Writes headers and a first chunk, then pipes a stream that fails. */
function failingStream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' });
  const source = new Readable({ read() {} });
  source.pipe(res);
  source.push('first chunk\n');
  setTimeout(() => source.destroy(new Error('disk went away')), 20);
}

/** A response whose body read must fail (destroyed), and not by our time bound. */
async function assertFailsMidStream(url: string, init: RequestInit = {}): Promise<void> {
  const res = await fetch(url, { ...init, signal: bounded() });
  assert.equal(res.status, 200);
  await assert.rejects(res.text(), (err: Error) => err.name !== 'TimeoutError' && err.name !== 'AbortError');
}

for (const [version, express] of expressVersions) {
  describe(`@unblock/error-handler inside ${version}`, () => {
    for (const level of levels) {
      describe(`at ${level} level`, () => {
        it('should render an error of the route with its status, as problem+json', async (t) => {
          const errors = errorHandler({ log: () => {} });
          const { app, path } = expressWith(express, level, errors, () => {
            throw createError(418, 'short and stout');
          }, errors.terminal);
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}`, { headers: problemJson });
          assert.equal(res.status, 418);
          assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
          const body = (await res.json()) as { status: number; detail: string };
          assert.equal(body.status, 418);
          assert.equal(body.detail, 'short and stout');
        });

        it('should destroy a response that fails after its headers were sent', async (t) => {
          const logged: unknown[] = [];
          const errors = errorHandler({ log: (err) => logged.push(err) });
          const failure = new Error('mid-stream');
          const { app, path } = expressWith(express, level, errors, (_req, res, next) => {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('partial ');
            setTimeout(() => next(failure), 20);
          }, errors.terminal);
          const { url } = await serve(t, app);
          await assertFailsMidStream(`${url}${path}`);
          assert.deepEqual(logged, [failure]);
        });

        it("should destroy the response when a piped stream fails, beside Express's own error handler", async (t) => {
          const logged: unknown[] = [];
          const errors = errorHandler({ log: (err) => logged.push(err) });
          // No terminal: errors passed to next() are Express's to render.
          const { app, path } = expressWith(express, level, errors, (req, res, next) => {
            if (req.query.fail === 'next') next(createError(422, 'for express'));
            else failingStream(res);
          });
          const { url } = await serve(t, app);
          await assertFailsMidStream(`${url}${path}`);
          assert.equal((logged[0] as Error).message, 'disk went away');
          const res = await fetch(`${url}${path}?fail=next`);
          assert.equal(res.status, 422);
          assert.match(res.headers.get('content-type') ?? '', /^text\/html/); // Express's finalhandler page
          await res.arrayBuffer();
        });
      });
    }

    it('should answer errors of a whole Express app run as the end of a chain', async (t) => {
      const logged: unknown[] = [];
      const errors = errorHandler({ log: (err) => logged.push(err) });
      const legacy = express();
      legacy.get('/boom', () => {
        throw new Error('secret internals');
      });
      legacy.get('/stream', ((_req, res) => failingStream(res)) as RequestHandler);
      const { url } = await serve(t, chain(errors).use('/legacy', legacy).use(errors.terminal));
      const res = await fetch(`${url}/legacy/boom`);
      assert.equal(res.status, 500);
      assert.equal(await res.text(), '500 Internal Server Error\n');
      await assertFailsMidStream(`${url}/legacy/stream`);
      const missing = await fetch(`${url}/legacy/none`);
      assert.equal(missing.status, 404);
      await missing.arrayBuffer();
      assert.equal(logged.length, 2);
    });
  });
}

describe('@unblock/error-handler inside Connect 3', () => {
  it('should render errors of mounted middleware and destroy a response whose piped stream fails', async (t) => {
    const logged: unknown[] = [];
    const errors = errorHandler({ log: (err) => logged.push(err) });
    const app = connect();
    app.use(errors);
    app.use('/fail', () => {
      throw createError(404, 'no such order');
    });
    app.use('/stream', (_req: IncomingMessage, res: ServerResponse) => failingStream(res));
    app.use(errors.terminal);
    const { url } = await serve(t, app);
    const res = await fetch(`${url}/fail`, { headers: problemJson });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { detail: string }).detail, 'no such order');
    await assertFailsMidStream(`${url}/stream`);
    assert.equal((logged.at(-1) as Error).message, 'disk went away');
  });
});

for (const [version, Koa] of koaVersions) {
  describe(`@unblock/error-handler inside ${version} through toKoa`, () => {
    const koaWithErrorHandler = (log: (err: unknown) => void) => {
      const errors = errorHandler({ log });
      const app = new Koa();
      // Outermost, the terminal catches what downstream throws; the watcher
      // sees the streams Koa pipes into the response.
      app.use(toKoa(errors.terminal));
      app.use(toKoa(errors));
      return app;
    };

    it("should render errors thrown downstream, in Koa's place", async (t) => {
      const logged: unknown[] = [];
      const app = koaWithErrorHandler((err) => logged.push(err));
      const koaReported = koaErrors(app);
      app.use((ctx) => {
        if (ctx.path === '/secret') throw new Error('secret internals');
        ctx.throw(409, 'already there');
      });
      const { url } = await serve(t, app.callback());
      const res = await fetch(url, { headers: problemJson });
      assert.equal(res.status, 409);
      assert.equal(((await res.json()) as { detail: string }).detail, 'already there');
      const hidden = await fetch(`${url}/secret`);
      assert.equal(hidden.status, 500);
      assert.equal(await hidden.text(), '500 Internal Server Error\n');
      assert.equal(logged.length, 2);
      assert.deepEqual(koaReported, []);
    });

    it('should destroy a response whose body stream fails, where Koa alone leaves it open', async (t) => {
      const logged: unknown[] = [];
      const app = koaWithErrorHandler((err) => logged.push(err));
      koaErrors(app);
      app.use(async (ctx) => {
        const body = new Readable({ read() {} });
        body.push('first chunk\n');
        setTimeout(() => body.destroy(new Error('disk went away')), 20);
        ctx.type = 'text';
        ctx.body = body;
        await delay(0);
      });
      const { url } = await serve(t, app.callback());
      await assertFailsMidStream(url);
      assert.equal((logged[0] as Error).message, 'disk went away');
    });

    it('should render a connect-style failure of a middleware adapted with toKoa', async (t) => {
      const app = koaWithErrorHandler(() => {});
      app.use(toKoa((_req: IncomingMessage, _res: ServerResponse, next: (err?: unknown) => void) => next(createError(413, 'too big'))));
      const { url } = await serve(t, app.callback());
      const res = await fetch(url);
      assert.equal(res.status, 413);
      assert.equal(await res.text(), '413 Payload Too Large\ntoo big\n');
    });
  });
}
