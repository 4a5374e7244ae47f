import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import createError from 'http-errors';
import { errorHandler, optionsSchema } from '../src/index.js';
import { rawRequest } from '../../../test/support/http.js';
import { eventually, serveWithErrorHandler } from './helpers.js';

const boom = () => Object.assign(new Error('database password is hunter2'), { code: 'EPASSWORD' });

describe('errorHandler(options) before headers are sent', () => {
  describe('the status', () => {
    it('should use err.status when it is 4xx or 5xx', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(418)));
      assert.equal((await fetch(url)).status, 418);
    });

    it('should use err.statusCode when there is no status', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(Object.assign(new Error('x'), { statusCode: 503 })));
      assert.equal((await fetch(url)).status, 503);
    });

    it('should answer 500 for a status that is not an error status', async (t) => {
      for (const status of [200, 302, 600, 404.5, '404']) {
        const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(Object.assign(new Error('x'), { status })));
        assert.equal((await fetch(url)).status, 500, `status ${String(status)}`);
      }
    });

    it('should answer 500 for a thrown non-error', async (t) => {
      const { url } = await serveWithErrorHandler(t, () => {
        throw 'a string';
      });
      const res = await fetch(url);
      assert.equal(res.status, 500);
      assert.equal(await res.text(), '500 Internal Server Error\n');
    });

    it('should catch synchronous throws and rejections of the app', async (t) => {
      const { url } = await serveWithErrorHandler(t, async (req) => {
        if (req.url === '/sync') throw createError(409);
        await Promise.resolve();
        throw createError(422);
      });
      assert.equal((await fetch(`${url}/sync`)).status, 409);
      assert.equal((await fetch(`${url}/async`)).status, 422);
    });
  });

  describe('a hostile error object', () => {
    it('should get a bare 500, from next(err) or from a stream, without crashing', async (t) => {
      const hostile = () =>
        new Proxy(new Error('x'), {
          get(target, key) {
            if (key === 'status' || key === 'message') throw new Error('getter exploded');
            return Reflect.get(target, key);
          },
        });
      const original = console.error;
      console.error = () => {};
      t.after(() => (console.error = original));
      const { url } = await serveWithErrorHandler(t, (req, res, next) => {
        if (req.url === '/next') next(hostile());
        else new Readable({ read() { this.destroy(hostile()); } }).pipe(res);
      });
      for (const path of ['/next', '/stream']) {
        const res = await fetch(`${url}${path}`);
        assert.equal(res.status, 500, path);
        assert.equal(await res.text(), 'Internal Server Error\n');
      }
    });
  });

  describe('the headers', () => {
    it('should clear the representation and cache headers the failed handler had set', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, res, next) => {
        res.setHeader('Content-Type', 'image/png');
        res.setHeader('Content-Length', '123456');
        res.setHeader('Content-Encoding', 'gzip');
        res.setHeader('Cache-Control', 'public, max-age=31536000');
        res.setHeader('ETag', '"abc"');
        res.setHeader('Last-Modified', new Date(0).toUTCString());
        res.setHeader('Access-Control-Allow-Origin', '*');
        res.setHeader('Set-Cookie', 'session=1');
        res.statusMessage = 'Everything Is Fine';
        next(new Error('late'));
      });
      const { text } = await rawRequest(Number(new URL(url).port), 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const head = text.slice(0, text.indexOf('\r\n\r\n')).toLowerCase();
      assert.match(head, /^http\/1\.1 500 internal server error\r\n/);
      assert.match(head, /\r\ncontent-type: text\/plain; charset=utf-8/);
      assert.match(head, /\r\ncontent-length: 26\r\n/);
      for (const gone of ['content-encoding', 'cache-control', 'etag', 'last-modified']) assert.doesNotMatch(head, new RegExp(`\r\n${gone}:`), gone);
      assert.match(head, /\r\naccess-control-allow-origin: \*/);
      assert.match(head, /\r\nset-cookie: session=1/);
      assert.ok(text.endsWith('\r\n\r\n500 Internal Server Error\n'));
    });

    it('should apply err.headers', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) =>
        next(createError(401, { headers: { 'WWW-Authenticate': 'Basic realm="x"', 'Retry-After': 5 } })),
      );
      const res = await fetch(url);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Basic realm="x"');
      assert.equal(res.headers.get('retry-after'), '5');
    });

    it('should skip an invalid header of err.headers and keep the status', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) =>
        next(createError(429, { headers: { 'Bad Name': 'x', 'X-Bad-Value': 'a\nb', 'Retry-After': '1' } })),
      );
      const res = await fetch(url);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(res.headers.get('x-bad-value'), null);
    });

    it('should not let err.headers set the headers that frame the body, but let it set its caching', async (t) => {
      const { port } = await serveWithErrorHandler(t, (_req, _res, next) =>
        next(
          createError(502, {
            headers: { 'Transfer-Encoding': 'chunked', 'content-encoding': 'gzip', 'Content-Type': 'image/png', 'Content-Length': '999', 'Cache-Control': 'no-store', 'Retry-After': '3' },
          }),
        ),
      );
      // Two requests on one connection: the second is answered only if the first response was framed right.
      const { text } = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const responses = text.split(/(?=HTTP\/1\.1 )/);
      assert.equal(responses.length, 2);
      for (const response of responses) {
        const head = response.slice(0, response.indexOf('\r\n\r\n')).toLowerCase();
        assert.match(head, /^http\/1\.1 502 bad gateway\r\n/);
        for (const gone of ['transfer-encoding', 'content-encoding']) assert.doesNotMatch(head, new RegExp(`\r\n${gone}:`), gone);
        assert.match(head, /\r\ncontent-type: text\/plain; charset=utf-8\r\n/);
        assert.match(head, /\r\ncontent-length: 16\r\n/);
        assert.match(head, /\r\nretry-after: 3\r\n/);
        assert.match(head, /\r\ncache-control: no-store\r\n/);
        assert.ok(response.endsWith('\r\n\r\n502 Bad Gateway\n'));
      }
    });

    it('should send CSP, nosniff and Vary: Accept', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, res, next) => {
        res.setHeader('Vary', 'Origin');
        next(createError(404));
      });
      const res = await fetch(url);
      assert.equal(res.headers.get('content-security-policy'), "default-src 'none'");
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('vary'), 'Origin, Accept');
    });
  });

  describe('what is shown', () => {
    it('should show the message and code of an exposed error (4xx)', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(400, 'name is required', { code: 'E_NAME' })));
      const res = await fetch(url, { headers: { accept: 'application/json' } });
      assert.deepEqual(await res.json(), { type: 'about:blank', title: 'Bad Request', status: 400, detail: 'name is required', code: 'E_NAME' });
    });

    it('should hide the message and code of an error that is not exposed (5xx)', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(boom()));
      const body = await (await fetch(url)).text();
      assert.equal(body, '500 Internal Server Error\n');
    });

    it('should hide a message unless err.expose is true, whatever the status', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(Object.assign(new Error('secret'), { status: 404 })));
      assert.equal(await (await fetch(url)).text(), '404 Not Found\n');
    });

    it('should not show stacks or hidden messages when NODE_ENV is unset or development', async (t) => {
      const before = process.env.NODE_ENV;
      t.after(() => {
        if (before === undefined) delete process.env.NODE_ENV;
        else process.env.NODE_ENV = before;
      });
      for (const env of [undefined, 'development']) {
        if (env === undefined) delete process.env.NODE_ENV;
        else process.env.NODE_ENV = env;
        const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(boom()));
        const body = await (await fetch(url, { headers: { accept: 'text/html' } })).text();
        assert.doesNotMatch(body, /hunter2|at .*\.ts/);
      }
    });

    it('should show message, code and stack with debug: true', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(boom()), { debug: true });
      const problem = (await (await fetch(url, { headers: { accept: 'application/problem+json' } })).json()) as Record<string, unknown>;
      assert.equal(problem.detail, 'database password is hunter2');
      assert.equal(problem.code, 'EPASSWORD');
      assert.match(String(problem.stack), /render\.test\.ts/);
    });

    it('should hide every message with expose: false', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(400, 'name is required')), { expose: false });
      assert.equal(await (await fetch(url)).text(), '400 Bad Request\n');
    });

    it('should show 5xx messages but no stack with expose: true', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(boom()), { expose: true });
      assert.equal(await (await fetch(url)).text(), '500 Internal Server Error\ndatabase password is hunter2\ncode: EPASSWORD\n');
    });
  });

  describe('content negotiation', () => {
    const cases: [accept: string | undefined, type: string][] = [
      [undefined, 'text/plain; charset=utf-8'],
      ['*/*', 'text/plain; charset=utf-8'],
      ['application/problem+json', 'application/problem+json; charset=utf-8'],
      ['application/json, text/plain, */*', 'application/json; charset=utf-8'],
      ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'text/html; charset=utf-8'],
      ['image/png', 'text/plain; charset=utf-8'],
    ];
    for (const [accept, type] of cases) {
      it(`should answer ${type.split(';')[0]} to Accept: ${accept ?? '(none)'}`, async (t) => {
        const { port } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(404)));
        const { text } = await rawRequest(port, `GET / HTTP/1.1\r\nHost: x\r\n${accept === undefined ? '' : `Accept: ${accept}\r\n`}Connection: close\r\n\r\n`);
        assert.match(text, new RegExp(`\r\nContent-Type: ${type.replace(/[+]/g, '\\+')}\r\n`));
      });
    }

    it('should escape the HTML page', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(400, '<script>alert(1)</script>')));
      const body = await (await fetch(url, { headers: { accept: 'text/html' } })).text();
      assert.match(body, /<title>400 Bad Request<\/title>/);
      assert.match(body, /<p>&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/p>/);
      assert.doesNotMatch(body, /<script>/);
    });
  });

  describe('HEAD', () => {
    it('should send the headers and no body', async (t) => {
      const { port } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(404)));
      const { text } = await rawRequest(port, 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
      assert.match(text, /\r\nContent-Length: 14\r\n/);
      assert.ok(text.endsWith('\r\n\r\n'), 'nothing after the head');
    });
  });

  describe('with a render option', () => {
    it('should send what it returns, with status and headers set by the handler', async (t) => {
      const { port } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(403, 'no')), {
        render: (_err, _req, details) => ({ type: 'application/vnd.api+json', body: JSON.stringify({ errors: [{ status: String(details.status), detail: details.message }] }) }),
      });
      const { text } = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.match(text, /\r\nContent-Type: application\/vnd\.api\+json\r\n/);
      assert.ok(text.endsWith('\r\n\r\n{"errors":[{"status":"403","detail":"no"}]}'));
    });

    it('should wait for an async renderer and fall back to the default for undefined', async (t) => {
      const { url } = await serveWithErrorHandler(t, (req, _res, next) => next(createError(req.url === '/custom' ? 409 : 410)), {
        render: async (_err, req) => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return req.url === '/custom' ? { type: 'text/plain', body: Buffer.from('custom') } : undefined;
        },
      });
      assert.equal(await (await fetch(`${url}/custom`)).text(), 'custom');
      assert.equal(await (await fetch(`${url}/default`)).text(), '410 Gone\n');
    });

    it("should wait for a thenable that is not a native promise (another realm's, Bluebird's)", async (t) => {
      const rendered = { type: 'text/plain', body: 'from a thenable' };
      const { url, logged } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(409)), {
        render: (_err, req) =>
          req.url === '/realm'
            ? (runInNewContext('Promise.resolve(rendered)', { rendered }) as PromiseLike<typeof rendered>)
            : ({ then: (resolve: (value: typeof rendered) => void) => void setTimeout(() => resolve(rendered), 10) } as unknown as PromiseLike<typeof rendered>),
      });
      for (const path of ['/realm', '/thenable']) {
        const res = await fetch(`${url}${path}`);
        assert.equal(res.status, 409);
        assert.equal(await res.text(), 'from a thenable');
      }
      assert.equal(logged.length, 2);
    });

    it('should answer once when the same error also arrives by a second path while it renders', async (t) => {
      const { url, logged } = await serveWithErrorHandler(
        t,
        (_req, res, next) => {
          const source = new Readable({ read() { this.destroy(createError(404, 'no such file')); } });
          source.on('error', next);
          source.pipe(res);
        },
        {
          render: async () => {
            await new Promise((resolve) => setTimeout(resolve, 30));
            return { type: 'text/plain', body: 'rendered once' };
          },
        },
      );
      const res = await fetch(url);
      assert.equal(res.status, 404);
      assert.equal(await res.text(), 'rendered once');
      assert.equal(logged.length, 1);
    });

    for (const [what, render] of [
      ['throws', () => { throw new Error('template missing'); }],
      ['rejects', async () => { throw new Error('template missing'); }],
      ['returns a thenable that rejects', () => ({ then: (_resolve: unknown, reject: (reason: Error) => void) => reject(new Error('template missing')) })],
      ['returns a thenable whose then throws', () => ({ then: () => { throw new Error('template missing'); } })],
      ['returns something unusable', () => ({ type: 'text/plain', body: 42 })],
    ] as const) {
      it(`should send a bare 500 and log a render failure when it ${what}`, async (t) => {
        const { url, logged } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(404)), { render: render as never });
        const res = await fetch(url);
        assert.equal(res.status, 500);
        assert.equal(await res.text(), 'Internal Server Error\n');
        await eventually(() => logged.length === 2, 'two log entries');
        assert.equal((logged[1]!.err as { code?: string }).code, 'UNBLOCK_ERR_ERROR_HANDLER_RENDER_FAILED');
        assert.equal((logged[1]!.err as { original?: unknown }).original, logged[0]!.err);
      });
    }
  });
});

describe('errorHandler(options) options', () => {
  it('should throw a TypeError with a code for bad options', () => {
    for (const options of [null, 'x', { debug: 'yes' }, { expose: 1 }, { drainLimit: -1 }, { drainLimit: '10 parsecs' }, { log: 'console' }, { render: {} }, { unknown: true }]) {
      assert.throws(() => errorHandler(options as never), (err: unknown) => err instanceof TypeError && (err as { code?: string }).code === 'UNBLOCK_ERR_ERROR_HANDLER_INVALID_OPTION', JSON.stringify(options));
    }
  });

  it('should accept sizes as numbers and strings', () => {
    for (const drainLimit of [0, 1024, '64kb', '1.5MB', ' 10 b ']) assert.doesNotThrow(() => errorHandler({ drainLimit }));
  });

  it('should not change the options object', () => {
    const options = Object.freeze({ debug: false, drainLimit: '1mb' });
    errorHandler(options);
    assert.deepEqual(options, { debug: false, drainLimit: '1mb' });
  });

  it('should export a draft-07 optionsSchema whose size pattern agrees with the parser', () => {
    assert.equal(optionsSchema.additionalProperties, false);
    assert.deepEqual(Object.keys(optionsSchema.properties).sort(), ['debug', 'drainLimit', 'expose']);
    const pattern = new RegExp(optionsSchema.properties.drainLimit.anyOf[1].pattern);
    for (const good of ['64kb', '1.5MB', '10', ' 2 gb ']) {
      assert.ok(pattern.test(good), good);
      assert.doesNotThrow(() => errorHandler({ drainLimit: good }));
    }
    for (const bad of ['64 kilobytes', '-1kb', 'kb']) {
      assert.ok(!pattern.test(bad), bad);
      assert.throws(() => errorHandler({ drainLimit: bad }), TypeError);
    }
  });
});
