import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { chain } from '@unblock/chain';
import { toKoa } from '@unblock/koa';
import connect from 'connect';
import express from 'express';
import express4 from 'express4';
import createError from 'http-errors';
import Koa from 'koa';
import Koa2 from 'koa2';
import { errorHandler } from '../src/index.js';
import { rawRequest, serve } from '../../../test/support/http.js';
import { collecting, eventually } from './helpers.js';

/** Sends two chunks, then fails. */
function brokenStream(): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent++ < 2) this.push(`chunk${sent}\n`);
      else setTimeout(() => this.destroy(new Error('source failed')), 10);
    },
  });
}

const endsWithoutFinalChunk = (text: string) => text.endsWith('\r\n') && !text.endsWith('0\r\n\r\n') && text.includes('chunk2');

for (const [version, createApp] of [
  ['Express 4', express4],
  ['Express 5', express],
] as const) {
  describe(`errorHandler(options) in ${version}`, () => {
    function buildApp() {
      const { options, logged } = collecting();
      const errors = errorHandler(options);
      const app = createApp();
      app.use(errors);
      app.get('/next', (_req, _res, next) => next(createError(404, 'no such thing')));
      app.get('/throw', () => {
        throw createError(409);
      });
      app.get('/stream', (_req, res) => {
        res.type('text');
        brokenStream().pipe(res);
      });
      app.get('/late', (_req, res, next) => {
        res.write('started');
        setTimeout(() => next(new Error('too late')), 20);
      });
      return { app, errors, logged };
    }

    it('should render next(err) and synchronous throws with the terminal middleware', async (t) => {
      const { app, errors } = buildApp();
      app.use(errors.terminal);
      const { url } = await serve(t, app as never);
      const res = await fetch(`${url}/next`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.deepEqual(await res.json(), { type: 'about:blank', title: 'Not Found', status: 404, detail: 'no such thing' });
      assert.equal((await fetch(`${url}/throw`)).status, 409);
    });

    it('should destroy a streamed response whose source fails midway', async (t) => {
      const { app, errors, logged } = buildApp();
      app.use(errors.terminal);
      const { port } = await serve(t, app as never);
      const { text, closed } = await rawRequest(port, 'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.ok(endsWithoutFinalChunk(text), JSON.stringify(text));
      assert.ok(closed);
      await eventually(() => logged.length === 1, 'the error logged');
      assert.equal(logged[0]!.info.headersSent, true);
    });

    it('should destroy a started response on next(err)', async (t) => {
      const { app, errors } = buildApp();
      app.use(errors.terminal);
      const { url } = await serve(t, app as never);
      const res = await fetch(`${url}/late`);
      await assert.rejects(res.text());
    });

    it('should render errors of a mounted Express app that has no error middleware of its own', async (t) => {
      const { app, errors } = buildApp();
      const api = createApp();
      api.get('/items/:id', (req, _res, next) => next(createError(404, `no item ${req.params.id}`)));
      api.get('/stream', (_req, res) => void brokenStream().pipe(res));
      app.use('/api', api);
      app.use(errors.terminal);
      const { url, port } = await serve(t, app as never);
      const res = await fetch(`${url}/api/items/7`);
      assert.equal(res.status, 404);
      assert.equal(await res.text(), '404 Not Found\nno item 7\n');
      const { text, closed } = await rawRequest(port, 'GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.ok(endsWithoutFinalChunk(text), JSON.stringify(text));
      assert.ok(closed);
    });

    it('should render errors of a mounted Express app with its own terminal', async (t) => {
      const { options } = collecting();
      const errors = errorHandler(options);
      const app = createApp();
      const api = createApp();
      api.use(errors);
      api.get('/x', () => {
        throw createError(418);
      });
      api.use(errors.terminal);
      app.use('/api', api);
      const { url } = await serve(t, app as never);
      assert.equal((await fetch(`${url}/api/x`)).status, 418);
    });

    it('should render errors of an Express app inside a chain', async (t) => {
      const { options } = collecting();
      const errors = errorHandler(options);
      const app = createApp();
      app.get('/x', (_req, _res, next) => next(createError(403)));
      const { url } = await serve(t, chain(errors, app as never, errors.terminal));
      const res = await fetch(`${url}/x`);
      assert.equal(res.status, 403);
      assert.equal(await res.text(), '403 Forbidden\n');
    });
  });
}

describe('errors.terminal alone at the end of an existing app', () => {
  it('should render, log and abort as the pair does', async (t) => {
    const { options, logged } = collecting();
    const app = express();
    app.get('/missing', (_req, _res, next) => next(createError(404)));
    app.get('/late', (_req, res, next) => {
      res.write('started');
      setTimeout(() => next(new Error('too late')), 20);
    });
    app.use(errorHandler(options).terminal);
    const { url } = await serve(t, app as never);
    const res = await fetch(`${url}/missing`);
    assert.equal(res.status, 404);
    assert.equal(await res.text(), '404 Not Found\n');
    await assert.rejects((await fetch(`${url}/late`)).text());
    await eventually(() => logged.length === 2, 'both errors logged');
    assert.deepEqual(
      logged.map((entry) => entry.info.headersSent),
      [false, true],
    );
  });
});

describe('errorHandler(options) in Connect', () => {
  it('should render next(err) and abort a failing stream', async (t) => {
    const { options } = collecting();
    const errors = errorHandler(options);
    const app = connect();
    app.use(errors);
    app.use('/stream', (_req: IncomingMessage, res: ServerResponse) => void brokenStream().pipe(res));
    app.use((_req: IncomingMessage, _res: ServerResponse, next: (err?: unknown) => void) => next(createError(410)));
    app.use(errors.terminal);
    const { url, port } = await serve(t, app as never);
    assert.equal((await fetch(`${url}/gone`)).status, 410);
    const { text, closed } = await rawRequest(port, 'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.ok(endsWithoutFinalChunk(text), JSON.stringify(text));
    assert.ok(closed);
  });
});

describe('errorHandler(options) in Express 5', () => {
  it('should render a rejection of an async handler', async (t) => {
    const { options } = collecting();
    const errors = errorHandler(options);
    const app = express();
    app.use(errors);
    app.get('/', async () => {
      await Promise.resolve();
      throw createError(451);
    });
    app.use(errors.terminal);
    const { url } = await serve(t, app as never);
    assert.equal((await fetch(url)).status, 451);
  });
});

for (const [version, KoaClass] of [
  ['Koa 3', Koa],
  ['Koa 2', Koa2],
] as const) {
  describe(`errorHandler(options) in ${version} through @unblock/koa`, () => {
    function buildApp() {
      const { options, logged } = collecting();
      const errors = errorHandler(options);
      const app = new KoaClass();
      // Koa reports here what reaches its own error flow: nothing should.
      const koaErrors: unknown[] = [];
      app.on('error', (err: unknown) => koaErrors.push(err));
      app.use(toKoa(errors));
      app.use(toKoa(errors.terminal));
      app.use(async (ctx) => {
        if (ctx.path === '/throw') ctx.throw(400, 'bad input');
        if (ctx.path === '/boom') throw new Error('db down');
        if (ctx.path === '/stream') {
          ctx.type = 'text';
          ctx.body = brokenStream();
        }
      });
      return { app, logged, koaErrors };
    }

    it('should render errors thrown downstream', async (t) => {
      const { app, logged, koaErrors } = buildApp();
      const { url } = await serve(t, app.callback() as (req: IncomingMessage, res: ServerResponse) => void);
      const res = await fetch(`${url}/throw`, { headers: { accept: 'application/problem+json' } });
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { type: 'about:blank', title: 'Bad Request', status: 400, detail: 'bad input' });
      const boom = await fetch(`${url}/boom`);
      assert.equal(boom.status, 500);
      assert.equal(await boom.text(), '500 Internal Server Error\n');
      await eventually(() => logged.length === 2, 'both errors logged');
      assert.deepEqual(koaErrors, [], 'answered and logged once, by the error handler');
    });

    it('should destroy a streamed body that fails midway (Koa 2 alone leaves the socket open)', async (t) => {
      // Koa's own listener on ctx.body streams may report the error too, depending on
      // which listener runs first (README: set app.silent); not asserted here.
      const { app } = buildApp();
      const { port } = await serve(t, app.callback() as (req: IncomingMessage, res: ServerResponse) => void);
      const { text, closed } = await rawRequest(port, 'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.ok(endsWithoutFinalChunk(text), JSON.stringify(text));
      assert.ok(closed, 'closed by the server, not by the idle timeout of the test client');
    });
  });
}

// Not 407: fetch turns it into a network error, as the Fetch standard says.
const statuses = [400, 403, 404, 409, 410, 413, 422, 429, 502, 503];

describe('errorHandler(options) under many errors at once', () => {
  it('should answer every request properly and stay up', async (t) => {
    const { options, logged } = collecting();
    const errors = errorHandler(options);
    const { url } = await serve(
      t,
      chain(
        errors,
        (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
          const n = Number(new URL(req.url!, 'http://x').searchParams.get('n'));
          if (n % 3 === 0) next(createError(statuses[n % statuses.length]!, `bad ${n}`));
          else if (n % 3 === 1) throw new Error(`crash ${n}`);
          else {
            res.write(`part ${n}`);
            setTimeout(() => next(new Error(`late ${n}`)), 5);
          }
        },
        errors.terminal,
      ),
    );
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, n) => {
        try {
          const res = await fetch(`${url}/?n=${n}`);
          return { n, status: res.status, body: await res.text() };
        } catch {
          return { n, status: 0, body: 'failed' };
        }
      }),
    );
    for (const { n, status, body } of results) {
      if (n % 3 === 0) {
        assert.equal(status, statuses[n % statuses.length]);
        assert.ok(status >= 500 ? !body.includes(`bad ${n}`) : body.endsWith(`bad ${n}\n`), body);
      } else if (n % 3 === 1) {
        assert.equal(status, 500);
        assert.equal(body, '500 Internal Server Error\n');
      } else {
        assert.equal(body, 'failed', `streamed response ${n} must fail`);
      }
    }
    await eventually(() => logged.length === 300, 'every error logged once');
    assert.equal((await fetch(`${url}/?n=0`)).status, 400);
  });
});
