import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { chain, EmptyRejectionError, isChain, type Next } from '../src/index.js';
import { closeServer, rawRequest, serve } from '../../../test/support/http.js';

const ok = (body: string) => (_req: IncomingMessage, res: ServerResponse) => res.end(body);

describe('chain(...items)', () => {
  it('should be a request handler for http.createServer', async (t) => {
    const { url } = await serve(t, chain(ok('hello')));
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello');
  });

  it('should run items in order, each calling next', async (t) => {
    const seen: string[] = [];
    const app = chain(
      (_req, _res, next) => {
        seen.push('a');
        next();
      },
      [
        (_req: IncomingMessage, _res: ServerResponse, next: Next) => {
          seen.push('b');
          next();
        },
        (_req: IncomingMessage, _res: ServerResponse, next: Next) => {
          seen.push('c');
          next();
        },
      ],
      (_req, res) => res.end(seen.join('')),
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'abc');
  });

  it('should be a middleware of another chain, passing on at its end', async (t) => {
    const inner = chain((req, res, next) => {
      res.setHeader('x-inner', 'yes');
      next();
    });
    const { url } = await serve(t, chain(inner, ok('outer')));
    const res = await fetch(url);
    assert.equal(res.headers.get('x-inner'), 'yes');
    assert.equal(await res.text(), 'outer');
  });

  it('should take an object with handle() and an http.Server', async (t) => {
    const server = createServer(ok('from server'));
    const app = chain({ handle: (req: IncomingMessage, res: ServerResponse, next: Next) => (req.url === '/h' ? res.end('from handle') : next()) }, server);
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(`${url}/h`)).text(), 'from handle');
    assert.equal(await (await fetch(`${url}/x`)).text(), 'from server');
  });

  it('should be recognised by isChain()', () => {
    assert.equal(isChain(chain()), true);
    assert.equal(isChain(() => {}), false);
  });

  it('should be an EventEmitter and keep Function.prototype', () => {
    const app = chain();
    let got: unknown;
    app.on('custom', (value: unknown) => (got = value));
    app.emit('custom', 42);
    assert.equal(got, 42);
    assert.equal(typeof app.call, 'function');
    assert.equal(typeof app.bind, 'function');
  });

  it('should expose its stack with names and mount paths', () => {
    function named(_req: IncomingMessage, _res: ServerResponse, next: Next) {
      next();
    }
    const app = chain(named).use('/Admin/', (_err: unknown, _req: IncomingMessage, _res: ServerResponse, next: Next) => next());
    assert.deepEqual(
      app.stack.map(({ name, route, isErrorMiddleware }) => ({ name, route, isErrorMiddleware })),
      [
        { name: 'named', route: '/', isErrorMiddleware: false },
        { name: 'anonymous', route: '/Admin', isErrorMiddleware: true },
      ],
    );
  });

  it('should reject bad items when built, with a TypeError and a code', () => {
    assert.throws(() => chain().use(42 as never), { name: 'TypeError', code: 'UNBLOCK_ERR_CHAIN_INVALID_ARGUMENT' });
    assert.throws(() => chain().use('/x', null as never), { name: 'TypeError', code: 'UNBLOCK_ERR_CHAIN_INVALID_ARGUMENT' });
    assert.throws(() => chain({ blockingThreshold: -1 }), { name: 'TypeError', code: 'UNBLOCK_ERR_CHAIN_INVALID_ARGUMENT' });
    assert.throws(() => chain({ blockingThreshhold: 5 } as never), { name: 'TypeError', code: 'UNBLOCK_ERR_CHAIN_INVALID_ARGUMENT' });
    assert.throws(() => chain({ debug: 'yes' } as never), { name: 'TypeError', code: 'UNBLOCK_ERR_CHAIN_INVALID_ARGUMENT' });
  });

  it('should not mutate the options object', () => {
    const options = Object.freeze({ debug: true, blockingThreshold: 10 });
    chain(options);
    assert.deepEqual(options, { debug: true, blockingThreshold: 10 });
  });
});

describe('app.listen(...args)', () => {
  it('should start an http.Server and return it', async (t) => {
    const app = chain(ok('listening'));
    const server = app.listen(0, '127.0.0.1');
    t.after(() => closeServer(server));
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'listening');
  });
});

describe('app.handle(req, res, next)', () => {
  it('should call the outer next at the end of the chain', async (t) => {
    const app = chain((_req, _res, next) => next());
    const { url } = await serve(t, (req, res) => app.handle(req, res, () => res.end('outer next')));
    assert.equal(await (await fetch(url)).text(), 'outer next');
  });

  it('should pass an error to the outer next', async (t) => {
    const app = chain(() => {
      throw Object.assign(new Error('teapot'), { status: 418 });
    });
    const { url } = await serve(t, (req, res) =>
      app.handle(req, res, (err) => {
        res.statusCode = (err as { status: number }).status;
        res.end(String((err as Error).message));
      }),
    );
    const res = await fetch(url);
    assert.equal(res.status, 418);
    assert.equal(await res.text(), 'teapot');
  });
});

describe('when a middleware returns a promise', () => {
  it('should send a rejection down the error path', async (t) => {
    const app = chain(
      async () => {
        await Promise.resolve();
        throw Object.assign(new Error('async failure'), { status: 409 });
      },
      (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => {
        res.statusCode = (err as { status: number }).status;
        res.end((err as Error).message);
      },
    );
    const { url } = await serve(t, app);
    const res = await fetch(url);
    assert.equal(res.status, 409);
    assert.equal(await res.text(), 'async failure');
  });

  it('should turn a falsy rejection into an Error with a code', async (t) => {
    let caught: unknown;
    const app = chain(
      () => Promise.reject(undefined),
      (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => {
        caught = err;
        res.end('handled');
      },
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'handled');
    assert.ok(caught instanceof EmptyRejectionError);
    assert.equal(caught.code, 'UNBLOCK_ERR_CHAIN_EMPTY_REJECTION');
  });

  it('should not call next when the promise resolves', async (t) => {
    let reachedNext = false;
    const app = chain(
      async (_req, res) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        res.end('async handler');
      },
      () => {
        reachedNext = true;
      },
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'async handler');
    assert.equal(reachedNext, false);
  });

  it('should report, not pass on, a rejection after next was called', async (t) => {
    const reported: unknown[] = [];
    const app = chain(
      { onError: (err) => reported.push(err) },
      async (_req, _res, next) => {
        next();
        await Promise.resolve();
        throw new Error('too late');
      },
      ok('downstream answered'),
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'downstream answered');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reported.length, 1);
    assert.equal((reported[0] as { code: string }).code, 'UNBLOCK_ERR_CHAIN_ERROR_AFTER_NEXT');
    assert.equal(((reported[0] as Error).cause as Error).message, 'too late');
  });
});

describe('when a middleware fails', () => {
  it('should skip to the next error middleware on a throw', async (t) => {
    const ran: string[] = [];
    const app = chain(
      () => {
        throw new Error('sync');
      },
      (_req: IncomingMessage, _res: ServerResponse, next: Next) => {
        ran.push('skipped middleware');
        next();
      },
      (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => res.end(`caught ${(err as Error).message}`),
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'caught sync');
    assert.deepEqual(ran, []);
  });

  it('should skip to the next error middleware on next(err)', async (t) => {
    const app = chain(
      (_req: IncomingMessage, _res: ServerResponse, next: Next) => next(new Error('passed')),
      ok('not me'),
      (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => res.end(`caught ${(err as Error).message}`),
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'caught passed');
  });

  it('should skip error middleware while there is no error', async (t) => {
    let called = false;
    const app = chain(
      (_err: unknown, _req: IncomingMessage, _res: ServerResponse, next: Next) => {
        called = true;
        next();
      },
      ok('fine'),
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'fine');
    assert.equal(called, false);
  });

  it('should let an error middleware recover by calling next()', async (t) => {
    const app = chain(
      (_req: IncomingMessage, _res: ServerResponse, next: Next) => next(new Error('recoverable')),
      (_err: unknown, _req: IncomingMessage, _res: ServerResponse, next: Next) => next(),
      ok('recovered'),
    );
    const { url } = await serve(t, app);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'recovered');
  });

  it('should turn a falsy throw into an Error with a code', async (t) => {
    let caught: unknown;
    const app = chain(
      () => {
        throw null;
      },
      (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => {
        caught = err;
        res.end('handled');
      },
    );
    const { url } = await serve(t, app);
    await (await fetch(url)).text();
    assert.equal((caught as { code: string }).code, 'UNBLOCK_ERR_CHAIN_EMPTY_REJECTION');
  });
});

describe('at the end of the chain, without an outer next', () => {
  it('should respond 404 with the escaped method and path', async (t) => {
    const { url } = await serve(t, chain((_req, _res, next) => next()));
    const res = await fetch(`${url}/<script>alert(1)</script>`);
    assert.equal(res.status, 404);
    const body = await res.text();
    assert.match(body, /Cannot GET \/%3Cscript%3Ealert\(1\)%3C\/script%3E/);
    assert.doesNotMatch(body, /<script>/);
    assert.equal(res.headers.get('content-security-policy'), "default-src 'none'");
  });

  it('should respond with the error status when it is 4xx or 5xx', async (t) => {
    const app = chain({ onError: () => {} }, (req) => {
      throw Object.assign(new Error('nope'), { statusCode: Number(req.url!.slice(1)) });
    });
    const { url } = await serve(t, app);
    assert.equal((await fetch(`${url}/403`)).status, 403);
    assert.equal((await fetch(`${url}/503`)).status, 503);
    assert.equal((await fetch(`${url}/302`)).status, 500);
    assert.equal((await fetch(`${url}/700`)).status, 500);
  });

  it('should apply err.headers', async (t) => {
    const app = chain({ onError: () => {} }, () => {
      throw Object.assign(new Error('busy'), { status: 503, headers: { 'Retry-After': '7' } });
    });
    const { url } = await serve(t, app);
    const res = await fetch(url);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '7');
  });

  it('should not reveal a stack trace unless debug is set, whatever NODE_ENV says', async (t) => {
    const previous = process.env.NODE_ENV;
    delete process.env.NODE_ENV;
    t.after(() => {
      if (previous !== undefined) process.env.NODE_ENV = previous;
    });
    const boom = () => {
      throw new Error('secret detail');
    };
    const quiet = await serve(t, chain({ onError: () => {} }, boom));
    const body = await (await fetch(quiet.url)).text();
    assert.doesNotMatch(body, /secret detail|at boom/);
    const loud = await serve(t, chain({ onError: () => {}, debug: true }, boom));
    assert.match(await (await fetch(loud.url)).text(), /secret detail/);
  });

  it('should report server errors to onError, once', async (t) => {
    const reported: unknown[] = [];
    const error = new Error('reported');
    const { url } = await serve(
      t,
      chain({ onError: (err) => reported.push(err) }, () => {
        throw error;
      }),
    );
    assert.equal((await fetch(url)).status, 500);
    assert.deepEqual(reported, [error]);
  });

  it('should destroy the response once headers were sent, not write another', async (t) => {
    const app = chain({ onError: () => {} }, (_req, res, next) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => next(new Error('mid-stream')));
    });
    const { port } = await serve(t, app);
    const { text, closed } = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(closed, true);
    assert.match(text, /^HTTP\/1\.1 200 OK/);
    assert.ok(text.endsWith('partial'), 'nothing written after the partial body');
    assert.doesNotMatch(text, /HTTP\/1\.1 500/);
  });

  it('should answer HEAD without a body', async (t) => {
    const { port } = await serve(t, chain());
    const { text } = await rawRequest(port, 'HEAD /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 404/);
    assert.ok(text.endsWith('\r\n\r\n'), 'no body after the head');
  });
});

describe('guards', () => {
  it('should report a second next() with a stable code and not run downstream twice', async (t) => {
    const reported: unknown[] = [];
    let runs = 0;
    const app = chain(
      { onError: (err) => reported.push(err) },
      function twice(_req, _res, next) {
        next();
        next();
      },
      (_req, res) => {
        runs++;
        res.end('once');
      },
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'once');
    assert.equal(runs, 1);
    assert.equal(reported.length, 1);
    assert.equal((reported[0] as { code: string }).code, 'UNBLOCK_ERR_CHAIN_NEXT_TWICE');
    assert.equal((reported[0] as { middleware: string }).middleware, 'twice');
  });

  it('should report a second, asynchronous next() too', async (t) => {
    const reported: unknown[] = [];
    let later: Next | undefined;
    const app = chain(
      { onError: (err) => reported.push(err) },
      (_req, _res, next) => {
        later = next;
        next();
      },
      ok('first'),
    );
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'first');
    later!();
    assert.equal((reported[0] as { code: string }).code, 'UNBLOCK_ERR_CHAIN_NEXT_TWICE');
  });

  it('should run 10,000 synchronous middleware without overflowing the stack', async (t) => {
    const app = chain();
    let count = 0;
    for (let i = 0; i < 10_000; i++) {
      app.use((_req, _res, next) => {
        count++;
        next();
      });
    }
    app.use((_req, res) => res.end(String(count)));
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), '10000');
  });

  it('should run chains nested 500 deep', async (t) => {
    let app = chain((_req, res) => res.end('deep'));
    for (let i = 0; i < 500; i++) app = chain((_req, _res, next) => next(), app);
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'deep');
  });

  it('should keep serving after a middleware misbehaves', async (t) => {
    const app = chain({ onError: () => {} }, (req, _res, next) => {
      if (req.url === '/bad') throw new Error('bad');
      next();
    }, ok('good'));
    const { url } = await serve(t, app);
    assert.equal((await fetch(`${url}/bad`)).status, 500);
    assert.equal(await (await fetch(`${url}/ok`)).text(), 'good');
  });
});
