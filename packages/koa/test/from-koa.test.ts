import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import connect from 'connect';
import { fromKoa } from '../src/index.js';
import { serve } from '../../../test/support/http.js';
import { koaErrors, koaVersions } from '../../../test/support/frameworks.js';

for (const [version, Koa] of koaVersions) {
  describe(`fromKoa(app) with ${version}`, () => {
    it('should serve a Koa app as a plain (req, res) handler', async (t) => {
      const app = new Koa();
      app.use((ctx) => {
        ctx.set('x-koa', version);
        ctx.body = { method: ctx.method, url: ctx.url };
      });
      const handler = fromKoa(app);
      assert.equal(handler.length, 2);
      const server = await serve(t, handler);
      const response = await fetch(`${server.url}/a?b=c`, { method: 'PUT' });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-koa'), version);
      assert.deepEqual(await response.json(), { method: 'PUT', url: '/a?b=c' });
    });

    it('should see mount-relative URLs when mounted under a path, the full one on ctx.req.originalUrl', async (t) => {
      const app = new Koa();
      app.use((ctx) => {
        ctx.body = { url: ctx.url, path: ctx.path, original: (ctx.req as IncomingMessage & { originalUrl?: string }).originalUrl };
      });
      const outer = connect();
      outer.use('/koa', fromKoa(app));
      outer.use((req: IncomingMessage, res: ServerResponse) => {
        res.end('connect');
      });
      const server = await serve(t, outer);
      assert.deepEqual(await (await fetch(`${server.url}/koa/items/1?x=2`)).json(), {
        url: '/items/1?x=2',
        path: '/items/1',
        original: '/koa/items/1?x=2',
      });
      assert.equal(await (await fetch(`${server.url}/other`)).text(), 'connect');
    });

    it('should never fall through: an unmatched request gets Koa 404, not the next middleware', async (t) => {
      const app = new Koa();
      app.use(async (ctx, next) => {
        if (ctx.path === '/known') ctx.body = 'known';
        else await next();
      });
      let fellThrough = false;
      const outer = connect();
      outer.use(fromKoa(app));
      outer.use((req: IncomingMessage, res: ServerResponse) => {
        fellThrough = true;
        res.end('after');
      });
      const server = await serve(t, outer);
      assert.equal(await (await fetch(`${server.url}/known`)).text(), 'known');
      const response = await fetch(`${server.url}/unknown`);
      assert.equal(response.status, 404);
      assert.equal(await response.text(), 'Not Found');
      assert.equal(fellThrough, false);
    });

    it("should leave errors to Koa's own error handling", async (t) => {
      const app = new Koa();
      const errors = koaErrors(app);
      app.use((ctx) => {
        ctx.throw(422, 'bad thing');
      });
      const server = await serve(t, fromKoa(app));
      const response = await fetch(server.url);
      assert.equal(response.status, 422);
      assert.equal(await response.text(), 'bad thing');
      assert.equal(errors.length, 1);
    });

    it('should include middleware added to the app after fromKoa() was called', async (t) => {
      const app = new Koa();
      const handler = fromKoa(app);
      app.use((ctx) => {
        ctx.body = 'added later';
      });
      const server = await serve(t, handler);
      assert.equal(await (await fetch(server.url)).text(), 'added later');
    });
  });
}

describe('fromKoa(app) with a bad argument', () => {
  for (const [what, value] of [
    ['undefined', undefined],
    ['null', null],
    ['a function without callback()', () => {}],
    ['an object whose callback is not a function', { callback: 1 }],
  ] as const) {
    it(`should throw a TypeError with code UNBLOCK_ERR_KOA_INVALID_ARGUMENT for ${what}`, () => {
      assert.throws(
        () => fromKoa(value as never),
        (err: unknown) => err instanceof TypeError && (err as { code?: string }).code === 'UNBLOCK_ERR_KOA_INVALID_ARGUMENT',
      );
    });
  }
});
