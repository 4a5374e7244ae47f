import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import bodyParser from 'body-parser';
import type { NextFunction, Request, Response } from 'express';
import createError from 'http-errors';
import Koa from 'koa';
import { toKoa } from '../src/index.js';
import { rawRequest, serve } from '../../../test/support/http.js';
import { koaErrors, koaVersions } from '../../../test/support/frameworks.js';

type BodyRequest = IncomingMessage & { body?: unknown; originalUrl?: string };

for (const [version, Koa] of koaVersions) {
  describe(`toKoa(middleware) in ${version}`, () => {
    describe('when the middleware ends the response', () => {
      it('should send its response once and not run downstream', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        let downstream = false;
        let respondAfter: boolean | undefined;
        app.use(async (ctx, next) => {
          await next();
          respondAfter = ctx.respond;
        });
        app.use(
          toKoa((req, res) => {
            res.setHeader('content-type', 'text/plain');
            res.end('from connect');
          }),
        );
        app.use((ctx) => {
          downstream = true;
          ctx.body = 'from koa';
        });
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), 'from connect');
        await delay(20);
        assert.equal(downstream, false);
        assert.equal(respondAfter, false);
        assert.deepEqual(errors, []);
      });

      it("should show Node's 200, not Koa's preset 404, to code that reads res.statusCode", async (t) => {
        const app = new Koa();
        let seen: number | undefined;
        app.use(
          toKoa((req, res) => {
            seen = res.statusCode;
            res.end('no status chosen');
          }),
        );
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(seen, 200);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), 'no status chosen');
      });

      it('should keep a status that Koa code set explicitly before it', async (t) => {
        const app = new Koa();
        let seen: number | undefined;
        app.use(async (ctx, next) => {
          ctx.status = 404;
          await next();
        });
        app.use(
          toKoa((req, res) => {
            seen = res.statusCode;
            res.end('gone');
          }),
        );
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(seen, 404);
        assert.equal(response.status, 404);
        await response.arrayBuffer();
      });

      it('should let upstream await the whole of a streamed response', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        const events: string[] = [];
        app.use(async (ctx, next) => {
          await next();
          events.push('upstream resumed');
        });
        // A bound far shorter than the stream: a started response is not a missing one.
        app.use(
          toKoa(
            (req, res) => {
              res.writeHead(200, { 'content-type': 'text/plain' });
              let sent = 0;
              const timer = setInterval(() => {
                res.write(`chunk ${sent}\n`);
                if (++sent === 5) {
                  clearInterval(timer);
                  events.push('end');
                  res.end();
                }
              }, 30);
            },
            { timeout: 50 },
          ),
        );
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(await response.text(), 'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n');
        await delay(20);
        assert.deepEqual(events, ['end', 'upstream resumed']);
        assert.deepEqual(errors, []);
      });
    });

    describe('on a kept-alive connection', () => {
      it('should answer pipelined requests in turn, by the middleware and by Koa, and HEAD without a body', async (t) => {
        const app = new Koa();
        app.use(
          toKoa((req, res, next) => {
            if (req.url !== '/connect') return next();
            res.setHeader('content-type', 'text/plain');
            res.setHeader('content-length', '7');
            res.end(req.method === 'HEAD' ? undefined : 'connect');
          }),
        );
        app.use((ctx) => {
          ctx.body = 'koa';
        });
        const server = await serve(t, app.callback());
        const { text } = await rawRequest(
          server.port,
          'GET /connect HTTP/1.1\r\nHost: x\r\n\r\n' +
            'GET /koa HTTP/1.1\r\nHost: x\r\n\r\n' +
            'HEAD /connect HTTP/1.1\r\nHost: x\r\n\r\n' +
            'GET /koa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        );
        const responses = text.split(/(?=HTTP\/1\.1 )/);
        assert.deepEqual(
          responses.map((response) => [response.split('\r\n')[0], response.split('\r\n\r\n')[1]]),
          [
            ['HTTP/1.1 200 OK', 'connect'],
            ['HTTP/1.1 200 OK', 'koa'],
            ['HTTP/1.1 200 OK', ''],
            ['HTTP/1.1 200 OK', 'koa'],
          ],
        );
      });
    });

    describe('when the middleware calls next()', () => {
      it('should run and await the downstream Koa middleware', async (t) => {
        const app = new Koa();
        const events: string[] = [];
        app.use(
          toKoa((req, res, next) => {
            events.push('connect');
            res.setHeader('x-connect', 'yes');
            next();
          }),
        );
        app.use(async (ctx) => {
          await delay(10);
          events.push('koa');
          ctx.body = 'from koa';
        });
        app.use(async (ctx, next) => {
          events.push('never');
          await next();
        });
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-connect'), 'yes');
        assert.equal(await response.text(), 'from koa');
        assert.deepEqual(events, ['connect', 'koa']);
      });

      it('should resume upstream only after downstream has finished', async (t) => {
        const app = new Koa();
        const events: string[] = [];
        app.use(async (ctx, next) => {
          await next();
          events.push('upstream resumed');
        });
        app.use(toKoa((req, res, next) => next()));
        app.use(async (ctx) => {
          await delay(30);
          events.push('downstream done');
          ctx.body = 'ok';
        });
        const server = await serve(t, app.callback());
        assert.equal(await (await fetch(server.url)).text(), 'ok');
        assert.deepEqual(events, ['downstream done', 'upstream resumed']);
      });

      it("should give Koa back its 404 when nothing downstream answers", async (t) => {
        const app = new Koa();
        app.use(toKoa((req, res, next) => next()));
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 404);
        assert.equal(await response.text(), 'Not Found');
      });

      it('should keep a status the middleware chose before calling next()', async (t) => {
        const app = new Koa();
        app.use(
          toKoa((req, res, next) => {
            res.statusCode = 202;
            next();
          }),
        );
        app.use((ctx) => {
          ctx.body = 'accepted';
        });
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 202);
        assert.equal(await response.text(), 'accepted');
      });

      it('should put a req.body the middleware set on ctx.request.body', async (t) => {
        const app = new Koa();
        let seen: unknown;
        app.use(
          toKoa((req: BodyRequest, res, next) => {
            req.body = Buffer.from('raw body');
            next();
          }),
        );
        app.use((ctx) => {
          seen = (ctx.request as { body?: unknown }).body;
          ctx.body = 'ok';
        });
        const server = await serve(t, app.callback());
        await (await fetch(server.url)).text();
        assert.deepEqual(seen, Buffer.from('raw body'));
      });

      it('should parse JSON with body-parser into ctx.request.body', async (t) => {
        const app = new Koa();
        app.use(toKoa(bodyParser.json()));
        app.use((ctx) => {
          ctx.body = { echoed: (ctx.request as { body?: unknown }).body };
        });
        const server = await serve(t, app.callback());
        const response = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ a: [1, 2] }),
        });
        assert.deepEqual(await response.json(), { echoed: { a: [1, 2] } });
      });

      it('should not replace a ctx.request.body set upstream when req.body did not change', async (t) => {
        const app = new Koa();
        let seen: unknown;
        app.use(async (ctx, next) => {
          (ctx.request as { body?: unknown }).body = { parsed: true };
          await next();
        });
        app.use(toKoa((req, res, next) => next()));
        app.use((ctx) => {
          seen = (ctx.request as { body?: unknown }).body;
          ctx.body = 'ok';
        });
        const server = await serve(t, app.callback());
        await (await fetch(server.url)).text();
        assert.deepEqual(seen, { parsed: true });
      });

      it("should set req.originalUrl from Koa's ctx.originalUrl", async (t) => {
        const app = new Koa();
        let seen: string | undefined;
        app.use(async (ctx, next) => {
          ctx.path = '/inner'; // what koa-mount does under a prefix
          await next();
        });
        app.use(
          toKoa((req: BodyRequest, res) => {
            seen = `${req.url} ${req.originalUrl}`;
            res.end();
          }),
        );
        const server = await serve(t, app.callback());
        await (await fetch(`${server.url}/outer/inner?q=1`)).text();
        assert.equal(seen, '/inner?q=1 /outer/inner?q=1');
      });
    });

    describe('when the middleware fails', () => {
      const failures: Array<[string, (err: Error) => (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => unknown]> = [
        ['calls next(err)', (err) => (req, res, next) => next(err)],
        ['throws', (err) => () => {
          throw err;
        }],
        ['rejects', (err) => async () => {
          await delay(1);
          throw err;
        }],
      ];
      for (const [how, make] of failures) {
        it(`should pass the error into Koa's error flow with its status when it ${how}`, async (t) => {
          const app = new Koa();
          const errors = koaErrors(app);
          const err = createError(418, 'short and stout');
          let caught: unknown;
          app.use(async (ctx, next) => {
            try {
              await next();
            } catch (e) {
              caught = e;
              throw e;
            }
          });
          app.use(toKoa(make(err)));
          const server = await serve(t, app.callback());
          const response = await fetch(server.url);
          assert.equal(response.status, 418);
          assert.equal(await response.text(), 'short and stout');
          assert.equal(caught, err);
          assert.deepEqual(errors, [err]);
        });
      }

      it('should answer 500 without the message for an error without status', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        app.use(
          toKoa(() => {
            throw new Error('secret detail');
          }),
        );
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 500);
        assert.equal(await response.text(), 'Internal Server Error');
        assert.equal(errors.length, 1);
      });

      it('should turn a rejection with undefined into UNBLOCK_ERR_KOA_EMPTY_REJECTION', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        app.use(toKoa(() => Promise.reject(undefined)));
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 500);
        await response.arrayBuffer();
        assert.equal((errors[0] as { code?: string }).code, 'UNBLOCK_ERR_KOA_EMPTY_REJECTION');
      });

      it('should destroy the response when it fails after sending headers', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        const err = new Error('mid-stream failure');
        app.use(
          toKoa((req, res, next) => {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('partial ');
            setTimeout(() => next(err), 20);
          }),
        );
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 200);
        await assert.rejects(response.text());
        assert.deepEqual(errors, [err]);
        assert.equal((err as { headerSent?: boolean }).headerSent, true);
      });

      it('should report an error after next() on the app, leaving the response alone', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        const late = new Error('after next');
        app.use(
          toKoa(async (req, res, next) => {
            next();
            await delay(5);
            throw late;
          }),
        );
        app.use((ctx) => {
          ctx.body = 'fine';
        });
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(await response.text(), 'fine');
        await delay(30);
        assert.deepEqual(errors, [late]);
      });

      it('should ignore and report a second call of next()', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        let downstreamRuns = 0;
        app.use(
          toKoa(function twice(req, res, next) {
            next();
            next();
          }),
        );
        app.use((ctx) => {
          downstreamRuns++;
          ctx.body = 'once';
        });
        const server = await serve(t, app.callback());
        assert.equal(await (await fetch(server.url)).text(), 'once');
        assert.equal(downstreamRuns, 1);
        assert.equal(errors.length, 1);
        assert.equal((errors[0] as { code?: string }).code, 'UNBLOCK_ERR_KOA_NEXT_TWICE');
        assert.equal((errors[0] as { middleware?: string }).middleware, 'twice');
      });
    });

    describe('when the middleware neither calls next() nor responds', () => {
      it('should fail with 503 UNBLOCK_ERR_KOA_NO_RESPONSE after timeout, and ignore a late next()', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        let downstream = false;
        let lateNext: (() => void) | undefined;
        app.use(
          toKoa(
            function silent(req, res, next) {
              lateNext = next;
            },
            { timeout: 50 },
          ),
        );
        app.use((ctx) => {
          downstream = true;
          ctx.body = 'too late';
        });
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 503);
        assert.equal(await response.text(), 'Service Unavailable');
        assert.equal(errors.length, 1);
        assert.equal((errors[0] as { code?: string }).code, 'UNBLOCK_ERR_KOA_NO_RESPONSE');
        assert.equal((errors[0] as { middleware?: string }).middleware, 'silent');
        lateNext!();
        await delay(20);
        assert.equal(downstream, false);
      });

      it('should complete the request when the client goes away, even with the bound off', { timeout: 5000 }, async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        let completed: () => void;
        const completion = new Promise<boolean | undefined>((resolve) => {
          completed = () => resolve(respond);
        });
        let respond: boolean | undefined;
        let called: () => void;
        const middlewareCalled = new Promise<void>((resolve) => {
          called = resolve;
        });
        app.use(async (ctx, next) => {
          await next();
          respond = ctx.respond;
          completed();
        });
        app.use(toKoa(() => called(), { timeout: 0 }));
        const server = await serve(t, app.callback());
        const socket = connect(server.port, '127.0.0.1');
        await once(socket, 'connect');
        socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
        await middlewareCalled;
        socket.destroy();
        assert.equal(await completion, false);
        assert.deepEqual(errors, []);
      });

      it('should complete at once when the client went away before it began', { timeout: 5000 }, async (t) => {
        let completed: (respond: boolean | undefined) => void;
        const completion = new Promise<boolean | undefined>((resolve) => {
          completed = resolve;
        });
        let received: () => void;
        const requestReceived = new Promise<void>((resolve) => {
          received = resolve;
        });
        const app = new Koa();
        app.use(async (ctx, next) => {
          received();
          await once(ctx.res, 'close');
          await next();
          completed(ctx.respond);
        });
        app.use(toKoa(() => {}, { timeout: 0 }));
        const server = await serve(t, app.callback());
        const socket = connect(server.port, '127.0.0.1');
        await once(socket, 'connect');
        socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
        await requestReceived;
        socket.destroy();
        assert.equal(await completion, false);
      });
    });

    describe('with an error middleware (err, req, res, next)', () => {
      it('should hand it errors thrown downstream and let it answer', async (t) => {
        const app = new Koa();
        const errors = koaErrors(app);
        let seen: unknown;
        const err = createError(409, 'conflict here');
        app.use(
          // Four parameters, even unused, are what make it an error middleware.
          toKoa((e: unknown, _req: IncomingMessage, res: ServerResponse, _next: (err?: unknown) => void) => {
            seen = e;
            res.statusCode = (e as { status: number }).status;
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ error: (e as Error).message }));
          }),
        );
        app.use(() => {
          throw err;
        });
        const server = await serve(t, app.callback());
        const response = await fetch(server.url);
        assert.equal(response.status, 409);
        assert.deepEqual(await response.json(), { error: 'conflict here' });
        assert.equal(seen, err);
        assert.deepEqual(errors, []);
      });

      it('should not be called when downstream succeeds', async (t) => {
        const app = new Koa();
        let calls = 0;
        app.use(
          toKoa((e: unknown, req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
            calls++;
            next(e);
          }),
        );
        app.use((ctx) => {
          ctx.body = 'fine';
        });
        const server = await serve(t, app.callback());
        assert.equal(await (await fetch(server.url)).text(), 'fine');
        assert.equal(calls, 0);
      });

      it('should pass on the error it gives to next(err), and the original one on next()', async (t) => {
        for (const passOn of ['replacement', 'nothing'] as const) {
          const app = new Koa();
          const errors = koaErrors(app);
          const original = createError(400, 'original');
          const replacement = createError(422, 'replacement');
          app.use(
            toKoa((e: unknown, req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
              next(passOn === 'replacement' ? replacement : undefined);
            }),
          );
          app.use(() => {
            throw original;
          });
          const server = await serve(t, app.callback());
          const response = await fetch(server.url);
          const expected = passOn === 'replacement' ? replacement : original;
          assert.equal(response.status, expected.status);
          assert.equal(await response.text(), expected.message);
          assert.deepEqual(errors, [expected]);
        }
      });
    });
  });
}

describe('toKoa(middleware, options)', () => {
  const bad: Array<[string, () => unknown]> = [
    ['a middleware that is not a function', () => toKoa('nope' as never)],
    ['a null middleware', () => toKoa(null as never)],
    ['options that are not an object', () => toKoa(() => {}, 5 as never)],
    ['an unknown option', () => toKoa(() => {}, { timout: 5 } as never)],
    ['a negative timeout', () => toKoa(() => {}, { timeout: -1 })],
    ['a fractional timeout', () => toKoa(() => {}, { timeout: 1.5 })],
    ['a timeout as a string', () => toKoa(() => {}, { timeout: '5s' } as never)],
    ['a timeout beyond setTimeout', () => toKoa(() => {}, { timeout: 2 ** 31 })],
  ];
  for (const [what, build] of bad) {
    it(`should throw a TypeError with code UNBLOCK_ERR_KOA_INVALID_ARGUMENT for ${what}`, () => {
      assert.throws(build, (err: unknown) => err instanceof TypeError && (err as { code?: string }).code === 'UNBLOCK_ERR_KOA_INVALID_ARGUMENT');
    });
  }

  it('should accept middleware typed with Express request and response types', () => {
    const expressTyped = (req: Request, res: Response, next: NextFunction) => next();
    const app = new Koa();
    app.use(toKoa(expressTyped));
    assert.equal(app.middleware.length, 1);
  });

  it('should accept timeout 0 (no bound) and not mutate the options', () => {
    const options = Object.freeze({ timeout: 0 });
    assert.equal(typeof toKoa(() => {}, options), 'function');
  });
});
