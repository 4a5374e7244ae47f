import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import express from 'express';
import { AmbiguousPathError, chain, type Next } from '../src/index.js';
import { rawRequest, serve } from '../../../test/support/http.js';

/** Answers with what the handler sees: `url originalUrl`. */
const echo = (label: string) => (req: IncomingMessage, res: ServerResponse) =>
  res.end(`${label} ${req.url} ${(req as { originalUrl?: string }).originalUrl}`);

async function get(url: string): Promise<string> {
  return (await fetch(url)).text();
}

/** Sends `target` as the request line verbatim, past the normalisation fetch does; the status and body of the answer. */
async function getRaw(port: number, target: string): Promise<{ status: number; body: string }> {
  const { text } = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const [head = '', body = ''] = text.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), body };
}

/** A directory with `admin/secret.txt` and `hello.txt`, removed after the test. */
async function filesToServe(t: TestContext): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'chain-mount-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'admin'));
  await writeFile(join(root, 'admin', 'secret.txt'), 'secret');
  await writeFile(join(root, 'hello.txt'), 'hello');
  return root;
}

describe('app.use(route, ...items)', () => {
  it('should strip the mount path from req.url inside and keep req.originalUrl', async (t) => {
    const { url } = await serve(t, chain().use('/admin', echo('admin')));
    assert.equal(await get(`${url}/admin/users?x=1`), 'admin /users?x=1 /admin/users?x=1');
    assert.equal(await get(`${url}/admin`), 'admin / /admin');
    assert.equal(await get(`${url}/admin?x=1`), 'admin /?x=1 /admin?x=1');
  });

  it('should restore req.url when the mounted middleware calls next', async (t) => {
    const app = chain()
      .use('/admin', (_req, _res, next) => next())
      .use(echo('after'));
    const { url } = await serve(t, app);
    assert.equal(await get(`${url}/admin/users`), 'after /admin/users /admin/users');
  });

  it('should restore req.url when an error leaves the mount', async (t) => {
    const app = chain()
      .use('/admin', (_req, _res, next) => next(new Error('x')))
      .use((_err: unknown, req: IncomingMessage, res: ServerResponse, _next: Next) => res.end(req.url));
    const { url } = await serve(t, app);
    assert.equal(await get(`${url}/admin/a?b`), '/admin/a?b');
  });

  it('should match on path segment boundaries, and at a dot as Connect does', async (t) => {
    const app = chain().use('/admin', echo('admin')).use(echo('other'));
    const { url } = await serve(t, app);
    assert.equal(await get(`${url}/adminx`), 'other /adminx /adminx');
    assert.equal(await get(`${url}/admin.json`), 'admin /.json /admin.json');
    assert.equal(await get(`${url}/ad`), 'other /ad /ad');
  });

  it('should treat a trailing slash on the mount path as no slash', async (t) => {
    const { url } = await serve(t, chain().use('/admin/', echo('admin')));
    assert.equal(await get(`${url}/admin/x`), 'admin /x /admin/x');
  });

  it('should match case-insensitively', async (t) => {
    const { url } = await serve(t, chain().use('/admin', echo('admin')));
    assert.equal(await get(`${url}/ADMIN/x`), 'admin /x /ADMIN/x');
    assert.equal(await get(`${url}/AdMiN`), 'admin / /AdMiN');
  });

  it('should not be bypassed by percent-encoding', async (t) => {
    const app = chain().use('/admin', echo('admin')).use(echo('other'));
    const { port } = await serve(t, app);
    const send = async (path: string) => (await getRaw(port, path)).body;
    assert.equal(await send('/%61dmin/secret'), 'admin /secret /%61dmin/secret');
    assert.equal(await send('/%41%44%4d%49%4e'), 'admin / /%41%44%4d%49%4e');
    assert.equal(await send('/admin%2Fsecret'), 'admin /%2Fsecret /admin%2Fsecret');
    assert.equal(await send('/%61dminx'), 'other /%61dminx /%61dminx');
  });

  it('should match non-ASCII mount paths against their percent-encoded form', async (t) => {
    const { url } = await serve(t, chain().use('/café', echo('café')));
    assert.equal(await get(`${url}/caf%C3%A9/menu`), 'café /menu /caf%C3%A9/menu');
  });

  it('should nest mounts, each stripping its own part', async (t) => {
    const users = chain().use('/users', echo('users'));
    const { url } = await serve(t, chain().use('/api', users));
    assert.equal(await get(`${url}/api/users/7`), 'users /7 /api/users/7');
  });

  it('should mount several items under one path', async (t) => {
    const app = chain().use(
      '/a',
      (req, res, next) => {
        res.setHeader('x-first', req.url!);
        next();
      },
      echo('second'),
    );
    const { url } = await serve(t, app);
    const res = await fetch(`${url}/a/b`);
    assert.equal(res.headers.get('x-first'), '/b');
    assert.equal(await res.text(), 'second /b /a/b');
  });

  it('should keep the scheme and host of an absolute-form request target', async (t) => {
    const { port } = await serve(t, chain().use('/admin', echo('admin')));
    const { text } = await rawRequest(port, 'GET http://example.com/admin/x?y HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    assert.equal(text.split('\r\n\r\n')[1], 'admin http://example.com/x?y http://example.com/admin/x?y');
  });

  it('should set the mount path of a chain used inside another', async (t) => {
    const inner = chain(echo('inner'));
    const app = chain().use('/inner', inner);
    const { url } = await serve(t, app);
    assert.equal(await get(`${url}/inner/z`), 'inner /z /inner/z');
    assert.equal(inner.route, '/inner');
    assert.deepEqual(
      app.stack.map((layer) => layer.route),
      ['/inner'],
    );
  });

  it('should keep the mount path as given in app.route and app.stack, and still match it case-insensitively', async (t) => {
    const users = chain(echo('users'));
    const app = chain().use('/Admin/Users/', users).use('/caf%C3%A9', echo('encoded')).use('/café', echo('plain'));
    assert.equal(users.route, '/Admin/Users');
    assert.deepEqual(
      app.stack.map((layer) => layer.route),
      ['/Admin/Users', '/caf%C3%A9', '/café'],
    );
    const { url } = await serve(t, app);
    assert.equal(await get(`${url}/admin/USERS/7`), 'users /7 /admin/USERS/7');
    assert.equal(await get(`${url}/CAF%c3%a9/menu`), 'encoded /menu /CAF%c3%a9/menu');
  });
});

describe('app.use(route, ...items) with a path that resolves to another', () => {
  // Spellings of /admin/secret.txt for a server that decodes and resolves the
  // path: express.static, and on Windows also with \ and %5C as separators.
  const spellings = [
    '/admin/secret.txt',
    '/ADMIN/secret.txt',
    '/%61dmin/secret.txt',
    '/admin%2Fsecret.txt',
    '/%2e/admin/secret.txt',
    '/%2E/admin/secret.txt',
    '/./admin/secret.txt',
    '/x/../admin/secret.txt',
    '/x/%2e%2e/admin/secret.txt',
    '/x/.%2E/admin/secret.txt',
    '/%2e%2e/admin/secret.txt',
    '//admin/secret.txt',
    '/%2fadmin/secret.txt',
    '/%2Fadmin%2fsecret.txt',
    '/%5cadmin\\secret.txt',
  ];

  /** A 401 guard on /admin in front of a static file server. */
  const guardedFiles = async (t: TestContext) =>
    chain()
      .use('/admin', (_req, res) => {
        res.statusCode = 401;
        res.end('guarded');
      })
      .use(express().use(express.static(await filesToServe(t))));

  it('should keep a guard in front of a static file server for every spelling of a guarded path', async (t) => {
    const { port } = await serve(t, await guardedFiles(t));
    assert.deepEqual(await getRaw(port, '/hello.txt'), { status: 200, body: 'hello' });
    for (const target of spellings) {
      assert.deepEqual(await getRaw(port, target), { status: 401, body: 'guarded' }, target);
    }
  });

  it('should count backslashes and %5C as separators, as WHATWG URL and Windows file servers do', async (t) => {
    const app = chain().use('/admin', echo('admin')).use(echo('other'));
    const { port } = await serve(t, app);
    assert.equal((await getRaw(port, '/admin\\a')).body, 'admin /a /admin\\a');
    assert.equal((await getRaw(port, '/%5cadmin%5Ca')).body, 'admin /a /%5cadmin%5Ca');
  });

  it('should give the mounted item the rest of the resolved path, with the query', async (t) => {
    const app = chain().use('/admin', echo('admin')).use(echo('other'));
    const { port } = await serve(t, app);
    const seen = async (target: string) => (await getRaw(port, target)).body;
    assert.equal(await seen('/x/%2e%2e/admin/users?q=/../x'), 'admin /users?q=/../x /x/%2e%2e/admin/users?q=/../x');
    assert.equal(await seen('//admin//users/'), 'admin /users/ //admin//users/');
    assert.equal(await seen('/./admin'), 'admin / /./admin');
    assert.equal(await seen('/x/../admin/.'), 'admin / /x/../admin/.');
    assert.equal(await seen('/x/../admin.json'), 'admin /.json /x/../admin.json');
    assert.equal(await seen('/%2fAdmin%2FUsers'), 'admin /Users /%2fAdmin%2FUsers');
    assert.equal(await seen('/x/%2E/../Admin/Users'), 'admin /Users /x/%2E/../Admin/Users');
  });

  it('should keep the path as sent when it already matches, as Connect does', async (t) => {
    const app = chain().use('/admin', echo('admin')).use(echo('other'));
    const { port } = await serve(t, app);
    assert.equal((await getRaw(port, '/admin/./users')).body, 'admin /./users /admin/./users');
    // A handler that compares req.url as a string sees /admin/ here, so the guard runs.
    assert.equal((await getRaw(port, '/admin/../hello.txt')).body, 'admin /../hello.txt /admin/../hello.txt');
  });

  it('should skip the mount for a path that neither as sent nor resolved is inside it', async (t) => {
    const app = chain().use('/admin', echo('admin')).use(echo('other'));
    const { port } = await serve(t, app);
    for (const target of ['/x/%2e%2e/administrator', '/adminx/%2e%2e/users', '/%2e%2e/x/admin', '/x//admin']) {
      assert.equal((await getRaw(port, target)).body, `other ${target} ${target}`);
    }
  });

  describe('when servers resolve the path in different ways', () => {
    // `//admin//../secret.txt` is /admin/secret.txt to WHATWG URL (`..`
    // removes the empty segment) and /secret.txt to express.static.
    const ambiguous = ['//admin//../secret.txt', '/x/..//admin/secret.txt', '/x%2f%2e%2e%2fadmin/secret.txt', '/x\\..\\admin/secret.txt', '/%2fAdmin/%2e/secret.txt'];

    it('should refuse the request with 400', async (t) => {
      const { port } = await serve(t, await guardedFiles(t));
      for (const target of ambiguous) {
        assert.equal((await getRaw(port, target)).status, 400, target);
      }
    });

    it('should pass an AmbiguousPathError to error middleware, without running the mounted item', async (t) => {
      let ran = false;
      const app = chain()
        .use('/admin', function adminArea() {
          ran = true;
        })
        .use((err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => {
          const { code, status, expose, middleware } = err as AmbiguousPathError;
          res.end(`${err instanceof AmbiguousPathError} ${code} ${status} ${expose} ${middleware}`);
        });
      const { port } = await serve(t, app);
      assert.deepEqual(await getRaw(port, '//admin//../x'), { status: 200, body: 'true UNBLOCK_ERR_CHAIN_AMBIGUOUS_PATH 400 true adminArea' });
      assert.equal(ran, false);
    });

    it('should let an error already on its way go on', async (t) => {
      const app = chain()
        .use((_req, _res, next) => next(Object.assign(new Error('down'), { status: 503 })))
        .use('/admin', (_err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => res.end('admin errors'))
        .use((err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next) => res.end(`${(err as { status: number }).status}`));
      const { port } = await serve(t, app);
      assert.equal((await getRaw(port, '//admin//../x')).body, '503');
    });

    it('should enter a mount the path matches as sent, as Connect does', async (t) => {
      const { port } = await serve(t, await guardedFiles(t));
      assert.deepEqual(await getRaw(port, '/admin//../secret.txt'), { status: 401, body: 'guarded' });
    });

    it('should leave the path alone when no mount has to be matched', async (t) => {
      const { port } = await serve(t, chain(echo('all')));
      assert.equal((await getRaw(port, '//admin//../x')).body, 'all //admin//../x //admin//../x');
    });
  });

  it('should restore the URL as sent when the mounted item calls next', async (t) => {
    const app = chain()
      .use('/admin', (_req, _res, next) => next())
      .use(echo('after'));
    const { port } = await serve(t, app);
    assert.equal((await getRaw(port, '/x/%2e%2e/admin/a?b')).body, 'after /x/%2e%2e/admin/a?b /x/%2e%2e/admin/a?b');
  });

  it('should keep a URL the mounted item set, under the mount path', async (t) => {
    const app = chain()
      .use('/admin', (req, _res, next) => {
        req.url = '/rewritten';
        next();
      })
      .use(echo('after'));
    const { port } = await serve(t, app);
    assert.equal((await getRaw(port, '/admin/a')).body, 'after /admin/rewritten /admin/a');
    assert.equal((await getRaw(port, '/x/%2e%2e/admin/a')).body, 'after /admin/rewritten /x/%2e%2e/admin/a');
  });

  it('should resolve the path of an absolute-form request target after its scheme and host', async (t) => {
    const { port } = await serve(t, chain().use('/admin', echo('admin')));
    const { body } = await getRaw(port, 'http://example.com/x/%2e%2e/admin/y?z');
    assert.equal(body, 'admin http://example.com/y?z http://example.com/x/%2e%2e/admin/y?z');
  });

  it('should resolve what is left inside an outer mount for the mounts of a nested chain', async (t) => {
    const users = chain().use('/users', echo('users'));
    const { port } = await serve(t, chain().use('/api', users));
    assert.equal((await getRaw(port, '/api/%2e/users/7')).body, 'users /7 /api/%2e/users/7');
  });
});
