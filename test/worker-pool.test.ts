// @unblock/worker-pool with the frameworks users already have: offload()
// inside Express 4/5 (app, router and route level) with Express's error
// handler and with @unblock/error-handler, inside Koa 2/3 through toKoa, and
// whole Express and Koa apps run unchanged as offloaded modules.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { chain } from '@unblock/chain';
import { errorHandler } from '@unblock/error-handler';
import { toKoa } from '@unblock/koa';
import { waitForBody } from '@unblock/wait-for-body';
import { createPool, offload } from '@unblock/worker-pool';
import connect from 'connect';
import type { ErrorRequestHandler } from 'express';
import { expressErrorRecorder, expressVersions, expressWith, koaErrors, koaVersions, levels } from './support/frameworks.js';
import { serve } from './support/http.js';

const pool = createPool({ maxThreads: 2 });
after(() => pool.close());

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const blocking = () => offload(fixture('blocking-handler.js'), { pool });
const post = (body = 'some body'): RequestInit => ({ method: 'POST', body, headers: { accept: 'application/problem+json' } });
/**
 * The client must see the response fail — closed before its head or cut in
 * its body, depending on how far the bytes got before the destroy — never
 * complete; bounded, so that a hang fails the test instead of stalling it.
 */
const failsMidStream = (url: string) =>
  assert.rejects(
    async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await res.text();
    },
    (err: Error) => err.name !== 'TimeoutError' && err.name !== 'AbortError',
  );

interface Answer {
  url: string;
  originalUrl: string;
  bodyLength: number;
  inWorker: boolean;
}

for (const [version, express] of expressVersions) {
  describe(`@unblock/worker-pool inside ${version}`, () => {
    for (const level of levels) {
      describe(`at ${level} level`, () => {
        // At route level offload() is itself the route's handler.
        const withOffload = (...after: ErrorRequestHandler[]) => expressWith(express, level, waitForBody(), blocking(), ...after);

        it('should run the handler on a worker with the body and the mount-relative URL', async (t) => {
          const { app, path } = withOffload();
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}?x=1`, post('twelve bytes'));
          assert.equal(res.status, 200);
          const answer = (await res.json()) as Answer;
          assert.equal(answer.inWorker, true);
          assert.equal(answer.bodyLength, 12);
          assert.equal(answer.originalUrl, `${path}?x=1`);
          assert.equal(answer.url, level === 'router' ? '/target?x=1' : `${path}?x=1`);
        });

        it("should pass a handler error to Express's default and custom error handlers, status and code rebuilt", async (t) => {
          const plain = withOffload();
          const recorder = expressErrorRecorder();
          const custom = withOffload(recorder.handler);
          const first = await serve(t, plain.app);
          const second = await serve(t, custom.app);
          const res = await fetch(`${first.url}${plain.path}?fail=before`, post());
          assert.equal(res.status, 422);
          await res.arrayBuffer();
          const handled = await fetch(`${second.url}${custom.path}?fail=before`, post());
          assert.equal(handled.status, 422);
          assert.equal(await handled.text(), 'caught 422 E_INPUT');
        });

        it('should have its errors rendered by @unblock/error-handler, and a failure after headers destroy the response', async (t) => {
          const logged: unknown[] = [];
          const errors = errorHandler({ log: (err) => logged.push(err) });
          const { app, path } = expressWith(express, level, [errors, waitForBody()], blocking(), errors.terminal);
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}?fail=before`, post());
          assert.equal(res.status, 422);
          const problem = (await res.json()) as { status: number; code: string };
          assert.deepEqual([problem.status, problem.code], [422, 'E_INPUT']);
          await failsMidStream(`${url}${path}?fail=after`);
        });
      });
    }

    for (const [appVersion] of expressVersions) {
      const module = fixture(`legacy-express${appVersion.slice(-1)}-app.js`);

      it(`should run an entire ${appVersion} app as an offloaded module, mounted under a path`, async (t) => {
        const app = express();
        app.use('/legacy', waitForBody(), offload(module, { pool }));
        app.get('/health', (_req, res) => res.send('ok'));
        const { url } = await serve(t, app);

        const hash = await fetch(`${url}/legacy/hash?password=pw`);
        assert.deepEqual(
          { ...((await hash.json()) as Answer & { hash: string }), hash: 'checked' },
          { hash: 'checked', url: '/hash?password=pw', originalUrl: '/legacy/hash?password=pw', inWorker: true },
        );
        const total = await fetch(`${url}/legacy/total`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ items: [{ qty: 2, price: 3 }, { qty: 1, price: 4 }] }),
        });
        assert.deepEqual(await total.json(), { total: 10 });
        assert.equal(total.headers.getSetCookie().length, 2);
        assert.equal(await (await fetch(`${url}/legacy/stream`)).text(), 'line 0\nline 1\nline 2\n');
        assert.equal(await (await fetch(`${url}/health`)).text(), 'ok');
      });

      it(`should let an offloaded ${appVersion} app answer its own errors and 404s, as it does unoffloaded`, async (t) => {
        const recorder = expressErrorRecorder();
        const app = express();
        app.use('/legacy', offload(module, { pool }));
        app.use(recorder.handler);
        const { url } = await serve(t, app);
        const failed = await fetch(`${url}/legacy/fail`);
        assert.equal(failed.status, 409);
        assert.match(await failed.text(), /conflict in the legacy app/); // its own finalhandler's page (not production)
        const missing = await fetch(`${url}/legacy/nowhere`);
        assert.equal(missing.status, 404);
        assert.match(await missing.text(), /Cannot GET \/legacy\/nowhere/); // Express names req.originalUrl
        assert.deepEqual(recorder.seen, []);
      });
    }
  });
}

describe('@unblock/worker-pool in a chain and in Connect 3', () => {
  it('should run an offloaded Express app as the end of a chain', async (t) => {
    const { url } = await serve(t, chain(waitForBody(), offload(fixture('legacy-express5-app.js'), { pool })));
    const res = await fetch(`${url}/hash?password=pw`);
    assert.equal(((await res.json()) as Answer).inWorker, true);
  });

  it('should run offloaded handlers mounted in Connect, with its error handling', async (t) => {
    const app = connect();
    app.use('/work', waitForBody());
    app.use('/work', blocking());
    const { url } = await serve(t, app);
    assert.equal(((await (await fetch(`${url}/work`, post('abc'))).json()) as Answer).bodyLength, 3);
    const failed = await fetch(`${url}/work?fail=before`, post());
    assert.equal(failed.status, 422);
    await failed.arrayBuffer();
  });
});

for (const [version, Koa] of koaVersions) {
  describe(`@unblock/worker-pool inside ${version} through toKoa`, () => {
    it('should answer from the worker, and Koa should not answer again', async (t) => {
      const app = new Koa();
      const reported = koaErrors(app);
      app.use(toKoa(waitForBody()));
      app.use(toKoa(blocking()));
      app.use((ctx) => {
        ctx.body = 'not reached';
      });
      const { url } = await serve(t, app.callback());
      const res = await fetch(`${url}/k?x=1`, post('four'));
      assert.equal(res.status, 200);
      const answer = (await res.json()) as Answer;
      assert.deepEqual([answer.inWorker, answer.bodyLength, answer.url], [true, 4, '/k?x=1']);
      assert.deepEqual(reported, []);
    });

    it("should send a handler error into Koa's error flow, or to @unblock/error-handler", async (t) => {
      const plain = new Koa();
      const reported = koaErrors(plain);
      plain.use(toKoa(blocking()));
      const handled = new Koa();
      const errors = errorHandler({ log: () => {} });
      handled.use(toKoa(errors.terminal));
      handled.use(toKoa(errors));
      handled.use(toKoa(blocking()));
      const first = await serve(t, plain.callback());
      const second = await serve(t, handled.callback());
      const res = await fetch(`${first.url}/?fail=before`, post());
      assert.equal(res.status, 422);
      assert.equal(await res.text(), 'bad input');
      assert.equal((reported[0] as { code?: string }).code, 'E_INPUT');
      const rendered = await fetch(`${second.url}/?fail=before`, post());
      assert.equal(((await rendered.json()) as { code: string }).code, 'E_INPUT');
      await failsMidStream(`${first.url}/?fail=after`);
    });
  });
}

describe('a Koa app as an offloaded module', () => {
  for (const [what, name] of [
    ['the Koa app itself', 'koa-app.js'],
    ['the Koa app through fromKoa', 'koa-handler.js'],
  ] as const) {
    it(`should run ${what} on a worker, with its own error handling`, async (t) => {
      const app = chain(waitForBody()).use('/koa', offload(fixture(name), { pool }));
      const { url } = await serve(t, app);
      const res = await fetch(`${url}/koa/items?x=1`, { method: 'POST', body: 'abc' });
      assert.deepEqual(await res.json(), { url: '/items?x=1', bodyLength: 3, inWorker: true });
      const failed = await fetch(`${url}/koa/fail`);
      assert.equal(failed.status, 418);
      assert.equal(await failed.text(), 'koa in a worker');
    });
  }
});
