import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { createPool, offload, type Pool } from '../src/index.js';
import { fixture, json, serve, serveChain, timedGet, type Served } from './helpers.js';

// Existing apps, exported unchanged from their modules, run on the pool.
describe('offload() of an existing app', () => {
  let pool: Pool;
  before(() => {
    pool = createPool({ maxThreads: 2 });
  });
  after(() => pool.close());

  for (const [name, file] of [
    ['Express 5', 'express5-app.mjs'],
    ['Express 4', 'express4-app.mjs'],
  ] as const) {
    describe(name, () => {
      let served: Served;
      before(async () => {
        // Mounted under /app by an outer Express 5 app on the main thread.
        const outer = express();
        outer.use('/app', offload(fixture(file), { pool }));
        served = await serve(outer);
      });
      after(() => served.close());

      it('should answer res.json with Express request helpers working', async () => {
        const body = await json(fetch(`${served.url}/app/json?x=1`));
        assert.deepEqual(body, { ok: true, query: { x: '1' }, ip: '127.0.0.1', protocol: 'http', path: '/json', originalUrl: '/app/json?x=1' });
      });

      it('should answer res.send with status, cookies and Content-Length', async () => {
        const res = await fetch(`${served.url}/app/send`);
        assert.equal(res.status, 202);
        assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
        assert.equal(res.headers.get('content-length'), '11');
        assert.equal(res.headers.get('etag') !== null, true);
        assert.deepEqual(res.headers.getSetCookie(), ['session=abc; Path=/', 'theme=dark; Path=/']);
        assert.equal(await res.text(), '<p>sent</p>');
      });

      it('should answer res.sendFile', async () => {
        const res = await fetch(`${served.url}/app/file`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type')!, /^text\/plain/);
        assert.equal(res.headers.get('content-length'), '21');
        assert.equal(await res.text(), 'static file contents\n');
      });

      it('should answer a conditional GET of sendFile with 304', async () => {
        const first = await fetch(`${served.url}/app/file`);
        await first.arrayBuffer();
        // node:http, since fetch adds headers that make any conditional request unconditional.
        const res = await timedGet(`${served.url}/app/file`, { 'if-none-match': first.headers.get('etag')! });
        assert.equal(res.status, 304);
        assert.equal(res.body, '');
      });

      it('should stream a piped Readable', async () => {
        const res = await fetch(`${served.url}/app/pipe`);
        assert.equal(res.headers.get('transfer-encoding'), 'chunked');
        assert.equal(await res.text(), 'one,two,three');
      });

      it('should parse a streamed JSON body inside the worker', async () => {
        const res = await fetch(`${served.url}/app/body`, { method: 'POST', body: JSON.stringify({ a: 1 }), headers: { 'content-type': 'application/json' } });
        assert.deepEqual(await res.json(), { received: { a: 1 } });
      });

      it("should render errors with the app's own error handling", async () => {
        assert.equal((await fetch(`${served.url}/app/missing`)).status, 404);
        const boom = await fetch(`${served.url}/app/boom`);
        assert.equal(boom.status, 500);
        assert.match(await boom.text(), /Internal Server Error|boom/);
        assert.equal((await fetch(`${served.url}/app/no-such-route`)).status, 404);
      });

      it('should answer HEAD through Express', async () => {
        const res = await fetch(`${served.url}/app/send`, { method: 'HEAD' });
        assert.equal(res.status, 202);
        assert.equal(res.headers.get('content-length'), '11');
        assert.equal(await res.text(), '');
      });
    });
  }

  for (const [name, file] of [
    ['Koa 3', 'koa-app.mjs'],
    ['Koa 2', 'koa2-app.mjs'],
  ] as const) {
    describe(name, () => {
      let served: Served;
      before(async () => {
        served = await serveChain(offload(fixture(file), { pool, forward: () => ({ requestId: 'r-1' }) }));
      });
      after(() => served.close());

      it('should run the Koa app through its callback()', async () => {
        const res = await fetch(`${served.url}/hello`, { method: 'POST' });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-koa'), 'yes');
        assert.deepEqual(res.headers.getSetCookie(), ['a=1; path=/; httponly', 'b=2; path=/; httponly']);
        assert.deepEqual(await res.json(), { path: '/hello', method: 'POST', ip: '127.0.0.1', forwarded: { requestId: 'r-1' } });
      });

      it('should stream a Readable body and render ctx.throw', async () => {
        assert.equal(await (await fetch(`${served.url}/stream`)).text(), 'k1,k2');
        const teapot = await fetch(`${served.url}/teapot`);
        assert.equal(teapot.status, 418);
        assert.equal(await teapot.text(), 'short and stout');
      });
    });
  }
});
