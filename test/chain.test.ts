// @unblock/chain with the frameworks users already have: inside Express 4/5
// (app, router and route level), Connect 3 and Koa 2/3, and with whole
// Express, Connect and Koa apps at the end of a chain or mounted in one.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { chain, type Next } from '@unblock/chain';
import { fromKoa, toKoa } from '@unblock/koa';
import connect from 'connect';
import createError from 'http-errors';
import { expressErrorRecorder, expressVersions, expressWith, koaErrors, koaVersions, levels } from './support/frameworks.js';
import { serve } from './support/http.js';

type Req = IncomingMessage & { originalUrl?: string };

const tag = (name: string) =>
  function tagging(_req: IncomingMessage, res: ServerResponse, next: Next) {
    res.setHeader(`x-${name}`, 'yes');
    next();
  };

/** A chain of a synchronous and an asynchronous middleware, so both kinds are crossed. */
const tagsChain = () =>
  chain(tag('sync'), async (_req: IncomingMessage, res: ServerResponse, next: Next) => {
    await delay(1);
    res.setHeader('x-async', 'yes');
    next();
  });

for (const [version, express] of expressVersions) {
  describe(`@unblock/chain inside ${version}`, () => {
    for (const level of levels) {
      describe(`at ${level} level`, () => {
        it('should run its middleware and hand over to the route', async (t) => {
          const { app, path } = expressWith(express, level, tagsChain(), (req, res) => {
            res.send(`route saw ${req.method} ${req.originalUrl}`);
          });
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}?q=1`, { method: 'POST' });
          assert.equal(res.status, 200);
          assert.equal(res.headers.get('x-sync'), 'yes');
          assert.equal(res.headers.get('x-async'), 'yes');
          assert.equal(await res.text(), `route saw POST ${path}?q=1`);
        });

        it("should pass a thrown error to Express's default error handler, with its status", async (t) => {
          const failing = chain(() => {
            throw createError(418, 'teapot');
          });
          const { app, path } = expressWith(express, level, failing, (_req, res) => {
            res.send('not reached');
          });
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}`);
          assert.equal(res.status, 418);
          await res.arrayBuffer();
        });

        it('should pass a rejection to an Express error middleware, the same error object', async (t) => {
          const err = Object.assign(createError(409, 'conflict'), { code: 'E_CONFLICT' });
          const failing = chain(async () => {
            await delay(1);
            throw err;
          });
          const recorder = expressErrorRecorder();
          const { app, path } = expressWith(express, level, failing, (_req, res) => {
            res.send('not reached');
          }, recorder.handler);
          const { url } = await serve(t, app);
          const res = await fetch(`${url}${path}`);
          assert.equal(res.status, 409);
          assert.equal(await res.text(), 'caught 409 E_CONFLICT');
          assert.deepEqual(recorder.seen, [err]);
        });
      });
    }

    it('should run an entire Express app as the end of a chain, falling through to the chain', async (t) => {
      const app = express();
      app.get('/hello', (req, res) => res.json({ url: req.url, from: 'express' }));
      const { url } = await serve(t, chain(tagsChain(), app, (_req: IncomingMessage, res: ServerResponse) => res.end('chain fallback')));
      const res = await fetch(`${url}/hello`);
      assert.equal(res.headers.get('x-async'), 'yes');
      assert.deepEqual(await res.json(), { url: '/hello', from: 'express' });
      // No route in the Express app: it calls the chain's next.
      assert.equal(await (await fetch(`${url}/nowhere`)).text(), 'chain fallback');
    });

    it('should run an Express app mounted under a path in a chain', async (t) => {
      const app = express();
      app.get('/hello', (req, res) => res.json({ url: req.url, originalUrl: req.originalUrl }));
      const { url } = await serve(t, chain().use('/legacy', app).use((_req: IncomingMessage, res: ServerResponse) => res.end('outside')));
      assert.deepEqual(await (await fetch(`${url}/legacy/hello?x=1`)).json(), { url: '/hello?x=1', originalUrl: '/legacy/hello?x=1' });
      assert.equal(await (await fetch(`${url}/hello`)).text(), 'outside');
    });

    it("should hand an error of the Express app to the chain's error middleware", async (t) => {
      const app = express();
      app.get('/fail', () => {
        throw createError(422, 'bad input');
      });
      const { url } = await serve(
        t,
        chain(app, (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => {
          res.statusCode = (err as { status: number }).status;
          res.end(`chain caught ${(err as Error).message}`);
        }),
      );
      const res = await fetch(`${url}/fail`);
      assert.equal(res.status, 422);
      assert.equal(await res.text(), 'chain caught bad input');
    });

    for (const [koaVersion, Koa] of koaVersions) {
      it(`should mount a ${koaVersion} app with fromKoa in ${version}, where it never falls through`, async (t) => {
        const koa = new Koa();
        koa.use(async (ctx, next) => {
          if (ctx.path === '/items') ctx.body = { url: ctx.url, originalUrl: (ctx.req as Req).originalUrl };
          else await next();
        });
        let fellThrough = false;
        const app = express();
        app.use('/shop', fromKoa(koa));
        app.use('/shop', (_req, res) => {
          fellThrough = true;
          res.send('express');
        });
        const { url } = await serve(t, app);
        assert.deepEqual(await (await fetch(`${url}/shop/items?x=1`)).json(), { url: '/items?x=1', originalUrl: '/shop/items?x=1' });
        const missing = await fetch(`${url}/shop/other`);
        assert.equal(missing.status, 404);
        assert.equal(await missing.text(), 'Not Found');
        assert.equal(fellThrough, false);
      });

      it(`should run a ${koaVersion} app through fromKoa, in a chain and mounted in ${version}`, async (t) => {
        const koa = new Koa();
        koa.use((ctx) => {
          ctx.body = { url: ctx.url, originalUrl: (ctx.req as Req).originalUrl };
        });
        const app = express();
        app.use(chain(tag('chain')));
        app.use('/koa', chain(tagsChain(), fromKoa(koa)));
        app.get('/express', (_req, res) => res.send('express'));
        const { url } = await serve(t, app);
        const res = await fetch(`${url}/koa/items?x=1`);
        assert.equal(res.headers.get('x-chain'), 'yes');
        assert.equal(res.headers.get('x-async'), 'yes');
        assert.deepEqual(await res.json(), { url: '/items?x=1', originalUrl: '/koa/items?x=1' });
        assert.equal(await (await fetch(`${url}/express`)).text(), 'express');
      });
    }
  });
}

describe('@unblock/chain with Connect 3', () => {
  it('should run inside a Connect app, at the top and mounted', async (t) => {
    const app = connect();
    app.use(tagsChain());
    app.use('/c', chain((req: IncomingMessage, res: ServerResponse) => res.end(`chain saw ${req.url}`)));
    const { url } = await serve(t, app);
    const res = await fetch(`${url}/c/x`);
    assert.equal(res.headers.get('x-async'), 'yes');
    assert.equal(await res.text(), 'chain saw /x');
  });

  it("should pass errors to Connect's default handler and to its error middleware", async (t) => {
    const bare = connect();
    bare.use(chain(() => Promise.reject(createError(451, 'gone'))));
    const withHandler = connect();
    withHandler.use(chain(() => Promise.reject(createError(451, 'gone'))));
    withHandler.use((err: Error & { status: number }, _req: IncomingMessage, res: ServerResponse, _next: Next) => {
      res.statusCode = err.status;
      res.end(`connect caught ${err.message}`);
    });
    const first = await serve(t, bare);
    const second = await serve(t, withHandler);
    const res = await fetch(first.url);
    assert.equal(res.status, 451);
    await res.arrayBuffer();
    const handled = await fetch(second.url);
    assert.equal(handled.status, 451);
    assert.equal(await handled.text(), 'connect caught gone');
  });

  it('should run a Connect app at the end of a chain and mounted in one', async (t) => {
    const inner = connect();
    inner.use((req: IncomingMessage, res: ServerResponse) => res.end(`connect saw ${req.url} ${(req as Req).originalUrl}`));
    const { url } = await serve(t, chain(tagsChain()).use('/c', inner));
    const res = await fetch(`${url}/c/x`);
    assert.equal(res.headers.get('x-async'), 'yes');
    assert.equal(await res.text(), 'connect saw /x /c/x');
  });

  for (const [koaVersion, Koa] of koaVersions) {
    it(`should run a ${koaVersion} app through fromKoa, mounted in Connect`, async (t) => {
      const koa = new Koa();
      koa.use((ctx) => {
        ctx.body = `koa saw ${ctx.url}`;
      });
      const app = connect();
      app.use('/k', chain(tag('chain'), fromKoa(koa)));
      const { url } = await serve(t, app);
      const res = await fetch(`${url}/k/y`);
      assert.equal(res.headers.get('x-chain'), 'yes');
      assert.equal(await res.text(), 'koa saw /y');
    });
  }
});

for (const [version, Koa] of koaVersions) {
  describe(`@unblock/chain inside ${version} through toKoa`, () => {
    it('should run its middleware and carry on with Koa downstream', async (t) => {
      const app = new Koa();
      app.use(toKoa(tagsChain()));
      app.use((ctx) => {
        ctx.body = 'koa';
      });
      const { url } = await serve(t, app.callback());
      const res = await fetch(url);
      assert.equal(res.headers.get('x-sync'), 'yes');
      assert.equal(res.headers.get('x-async'), 'yes');
      assert.equal(await res.text(), 'koa');
    });

    it("should answer from the chain, and pass its errors into Koa's error flow", async (t) => {
      const app = new Koa();
      const errors = koaErrors(app);
      app.use(
        toKoa(
          chain()
            .use('/answer', (_req: IncomingMessage, res: ServerResponse) => res.end('chain answered'))
            .use('/fail', () => {
              throw createError(429, 'slow down');
            }),
        ),
      );
      const { url } = await serve(t, app.callback());
      const answered = await fetch(`${url}/answer`);
      assert.equal(answered.status, 200);
      assert.equal(await answered.text(), 'chain answered');
      const failed = await fetch(`${url}/fail`);
      assert.equal(failed.status, 429);
      assert.equal(await failed.text(), 'slow down');
      assert.equal(errors.length, 1);
    });
  });
}
