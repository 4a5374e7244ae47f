import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { chain, type Next } from '../src/index.js';
import { serve } from '../../../test/support/http.js';

// Connect reads NODE_ENV once, when it is loaded, to decide whether error
// pages show stack traces; the chain never shows them unless asked. Compare
// them where Connect hides them too.
process.env.NODE_ENV = 'production';
const { default: connect } = await import('connect');

describe('chain() in place of connect()', () => {
  type App = { use(...args: unknown[]): unknown; (req: IncomingMessage, res: ServerResponse): void };

  // A Connect user switches by changing one import: the same program, built
  // once with connect() and once with chain(), must answer alike.
  const program = (app: App) => {
    app.use((req: IncomingMessage, res: ServerResponse, next: Next) => {
      res.setHeader('x-url', req.url!);
      next();
    });
    app.use('/blog', (req: IncomingMessage, res: ServerResponse, next: Next) => (req.url === '/' ? res.end('blog index') : next()));
    app.use('/blog/', (req: IncomingMessage, res: ServerResponse) => res.end(`blog post ${req.url} of ${(req as { originalUrl?: string }).originalUrl}`));
    app.use('/fail', (_req: IncomingMessage, _res: ServerResponse, next: Next) => next(Object.assign(new Error('bad'), { status: 400 })));
    app.use('/throw', () => {
      throw Object.assign(new Error('thrown'), { statusCode: 503, headers: { 'retry-after': '3' } });
    });
    app.use('/recover', (_req: IncomingMessage, _res: ServerResponse, next: Next) => next(new Error('oops')));
    app.use((err: Error, req: IncomingMessage, _res: ServerResponse, next: Next) => (req.url!.startsWith('/recover') ? next() : next(err)));
    app.use('/recover', (_req: IncomingMessage, res: ServerResponse) => res.end('recovered'));
    return app;
  };
  const requests = ['/', '/blog', '/blog/', '/BLOG/hello?x=1', '/blog.rss', '/blogger', '/fail', '/throw', '/recover', '/missing', '/a%20b'];

  it('should answer every request as Connect does', async (t) => {
    const viaConnect = await serve(t, program(connect() as unknown as App) as never);
    const viaChain = await serve(t, program(chain({ onError: () => {} }) as unknown as App) as never);
    for (const method of ['GET', 'HEAD', 'POST']) {
      for (const path of requests) {
        const [a, b] = await Promise.all([fetch(viaConnect.url + path, { method }), fetch(viaChain.url + path, { method })]);
        const what = `${method} ${path}`;
        assert.equal(b.status, a.status, `status of ${what}`);
        for (const header of ['x-url', 'content-type', 'content-length', 'retry-after', 'content-security-policy']) {
          assert.equal(b.headers.get(header), a.headers.get(header), `${header} of ${what}`);
        }
        assert.equal(await b.text(), await a.text(), `body of ${what}`);
      }
    }
  });

  it('should report mount paths as Connect does', () => {
    for (const make of [connect, chain] as unknown as (() => App & { route: string; stack: { route: string }[] })[]) {
      const app = make();
      const users = make();
      const menu = make();
      app.use('/Admin/Users', users);
      app.use('/caf%C3%A9', menu);
      app.use('/café', (_req: IncomingMessage, _res: ServerResponse, next: Next) => next());
      assert.deepEqual([users.route, menu.route], ['/Admin/Users', '/caf%C3%A9'], make.name);
      assert.deepEqual(
        app.stack.map((layer) => layer.route),
        ['/Admin/Users', '/caf%C3%A9', '/café'],
        make.name,
      );
    }
  });
});
