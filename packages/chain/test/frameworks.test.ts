import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import { chain, type Next } from '../src/index.js';
import { serve } from '../../../test/support/http.js';

const tag = (name: string) => (_req: IncomingMessage, res: ServerResponse, next: Next) => {
  res.setHeader(`x-${name}`, 'yes');
  next();
};

for (const [version, express] of [
  ['4', express4],
  ['5', express5],
] as const) {
  describe(`inside Express ${version}`, () => {
    it('should work as app-level middleware', async (t) => {
      const app = express();
      app.use(chain(tag('chain')));
      app.get('/', (_req, res) => res.send('express'));
      const { url } = await serve(t, app);
      const res = await fetch(url);
      assert.equal(res.headers.get('x-chain'), 'yes');
      assert.equal(await res.text(), 'express');
    });

    it('should work as router-level and route-level middleware, mounted', async (t) => {
      const app = express();
      const router = express.Router();
      router.use(chain(tag('router')));
      router.get('/item', chain(tag('route')), (req, res) => res.send(`${req.baseUrl} ${req.url}`));
      app.use('/api', router);
      const { url } = await serve(t, app);
      const res = await fetch(`${url}/api/item`);
      assert.equal(res.headers.get('x-router'), 'yes');
      assert.equal(res.headers.get('x-route'), 'yes');
      assert.equal(await res.text(), '/api /item');
    });

    it("should pass errors to Express's error handler", async (t) => {
      const app = express();
      app.use(
        chain(() => {
          throw Object.assign(new Error('from chain'), { status: 422 });
        }),
      );
      app.use((err: Error & { status: number }, _req: unknown, res: { status(n: number): { send(b: string): void } }, _next: unknown) => {
        res.status(err.status).send(`express caught ${err.message}`);
      });
      const { url } = await serve(t, app);
      const res = await fetch(url);
      assert.equal(res.status, 422);
      assert.equal(await res.text(), 'express caught from chain');
    });

    it('should run an Express app as the end of a chain and under a mount path', async (t) => {
      const app = express();
      app.get('/hello', (req, res) => res.json({ url: req.url, originalUrl: req.originalUrl }));
      const { url } = await serve(t, chain(tag('chain')).use('/legacy', app));
      const res = await fetch(`${url}/legacy/hello`);
      assert.equal(res.headers.get('x-chain'), 'yes');
      assert.deepEqual(await res.json(), { url: '/hello', originalUrl: '/legacy/hello' });
    });

    it('should fall through to the chain when the Express app has no route', async (t) => {
      const app = express();
      app.get('/known', (_req, res) => res.send('known'));
      const { url } = await serve(t, chain(app, (_req, res) => res.end('chain fallback')));
      assert.equal(await (await fetch(`${url}/known`)).text(), 'known');
      assert.equal(await (await fetch(`${url}/unknown`)).text(), 'chain fallback');
    });
  });
}

describe('with Connect 3', () => {
  it('should run inside a Connect app, mounted', async (t) => {
    const app = connect();
    app.use('/c', chain((req, res) => res.end(`chain saw ${req.url}`)));
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(`${url}/c/x`)).text(), 'chain saw /x');
  });

  it('should run a Connect app inside a chain, mounted', async (t) => {
    const inner = connect();
    inner.use((req: IncomingMessage, res: ServerResponse) => res.end(`connect saw ${req.url}`));
    const { url } = await serve(t, chain().use('/c', inner));
    assert.equal(await (await fetch(`${url}/c/x`)).text(), 'connect saw /x');
  });
});
