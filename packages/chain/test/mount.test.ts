import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { chain, type Next } from '../src/index.js';
import { rawRequest, serve } from '../../../test/support/http.js';

/** Answers with what the handler sees: `url originalUrl`. */
const echo = (label: string) => (req: IncomingMessage, res: ServerResponse) =>
  res.end(`${label} ${req.url} ${(req as { originalUrl?: string }).originalUrl}`);

async function get(url: string): Promise<string> {
  return (await fetch(url)).text();
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
    const send = async (path: string) => (await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).text.split('\r\n\r\n')[1];
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
});
