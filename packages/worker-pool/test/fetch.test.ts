import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import http2, { type Http2SecureServer, type Http2Server } from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { chain } from '@unblock/chain';
import { listenHttp2, type Http2Listening } from '../../../test/support/http2.js';
import { createPool, offload, type OffloadMiddleware, type Pool } from '../src/index.js';
import { fixture, renderError, serveChain, type Served } from './helpers.js';

interface Seen {
  url: string;
  pathname: string;
  method: string;
  headers: [string, string][];
  body: string | null;
}

interface RawResponse {
  status: number;
  body: string;
}

/** Sends `text` as it is on a new connection, reads until the server closes it. */
function rawRequest(port: number, text: string, host = '127.0.0.1'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => socket.write(text));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => (received += data));
    socket.on('end', () => {
      const end = received.indexOf('\r\n\r\n');
      const body = received.slice(end + 4);
      const chunked = /^transfer-encoding: *chunked\r$/im.test(received.slice(0, end + 2));
      resolve({ status: Number(received.slice(9, 12)), body: chunked ? unchunk(body) : body });
    });
    socket.on('error', reject);
  });
}

/** A chunked body's content (chunk extensions and trailers ignored). */
function unchunk(body: string): string {
  let content = '';
  for (let at = 0; ; ) {
    const line = body.indexOf('\r\n', at);
    const size = parseInt(body.slice(at, line), 16);
    if (!(size > 0)) return content;
    content += body.slice(line + 2, line + 2 + size);
    at = line + 2 + size + 2;
  }
}

/** An HTTP/1.1 request with `target`, `Connection: close` and the given header lines. */
const request11 = (method: string, target: string, ...lines: string[]): string => `${method} ${target} HTTP/1.1\r\n${[...lines, 'Connection: close'].join('\r\n')}\r\n\r\n`;

/** The handler's view of the request; fails with what came back when the response is not one. */
function seen(response: RawResponse): Seen {
  assert.equal(response.status, 200, response.body);
  return JSON.parse(response.body) as Seen;
}

/** The JSON error the renderer made of next(err). */
function failure(response: { status: number | undefined; body: string }): { status: number; code: string; expose: boolean; message: string } {
  return { status: response.status!, ...(JSON.parse(response.body) as { code: string; expose: boolean; message: string }) };
}

function serveHttp2(server: Http2Server | Http2SecureServer, middleware: OffloadMiddleware, secure = false): Promise<Http2Listening> {
  server.on('request', (req, res) => {
    const request = req as unknown as IncomingMessage;
    const response = res as unknown as ServerResponse;
    middleware(request, response, (err) => renderError(err, request, response, () => {}));
  });
  return listenHttp2(server, secure ? { ca: readFileSync(fixture('tls-cert.pem')) } : undefined);
}

/** `listener` on [::1], port 0; undefined where the host has no IPv6 loopback. */
async function serveIpv6(listener: RequestListener): Promise<{ port: number; close(): Promise<void> } | undefined> {
  const server = createServer(listener);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '::1', resolve);
    });
  } catch {
    return undefined;
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('offload() with a fetch-style handler: the Request it gets', () => {
  let pool: Pool;
  before(() => {
    pool = createPool({ maxThreads: 2, minThreads: 1 });
  });
  after(() => pool.close());

  for (const inline of [false, true]) {
    describe(inline ? 'inline' : 'on the pool', () => {
      const options = () => (inline ? { inline } : { pool });

      describe('over HTTP/1.1', () => {
        let served: Served;
        before(async () => {
          const handler = offload(fixture('fetch-request.mjs'), options());
          served = await serveChain(chain().use('/api', handler).use(handler));
        });
        after(() => served.close());

        const send = (text: string) => rawRequest(served.port, text);

        it('should have an absolute URL of the Host header and the target', async () => {
          const request = seen(await send(request11('GET', '/a/b?x=1&x=2', 'Host: example.com:8080', 'X-Rep: one', 'x-rep: two')));
          assert.equal(request.url, 'http://example.com:8080/a/b?x=1&x=2');
          assert.equal(request.method, 'GET');
          assert.deepEqual(request.headers, [
            ['connection', 'close'],
            ['host', 'example.com:8080'],
            ['x-rep', 'one, two'],
          ]);
        });

        it('should have the mount-relative path, the one the handler routes on', async () => {
          const request = seen(await send(request11('GET', '/api/users/7?full', 'Host: example.com')));
          assert.equal(request.url, 'http://example.com/users/7?full');
        });

        it('should keep a path that starts with two slashes a path', async () => {
          const request = seen(await send(request11('GET', '//other.example/x', 'Host: example.com')));
          assert.equal(request.url, 'http://example.com//other.example/x');
          assert.equal(request.pathname, '//other.example/x');
        });

        it('should carry the body', async () => {
          const request = seen(await send(request11('POST', '/upload', 'Host: example.com', 'Content-Length: 5') + 'hello'));
          assert.deepEqual([request.method, request.body], ['POST', 'hello']);
        });

        describe('when the target is in absolute form', () => {
          it('should take scheme, host and path from it, not from the Host header', async () => {
            const request = seen(await send(request11('GET', 'http://example.com/a?b=1', 'Host: ignored.example')));
            assert.equal(request.url, 'http://example.com/a?b=1');
            const https = seen(await send(request11('GET', 'HTTPS://Example.COM:8443/a', 'Host: ignored.example')));
            assert.equal(https.url, 'https://example.com:8443/a');
          });

          it('should have the mount-relative path', async () => {
            const request = seen(await send(request11('GET', 'http://example.com/api/users?id=7', 'Host: example.com')));
            assert.equal(request.url, 'http://example.com/users?id=7');
          });

          it('should give a target without a path the path /', async () => {
            const request = seen(await send(request11('GET', 'http://example.com?q=1', 'Host: example.com')));
            assert.equal(request.url, 'http://example.com/?q=1');
          });

          it('should respond 400 when the target names no valid host', async () => {
            for (const target of ['http://user@example.com/a', 'http:///a', 'http://exa%20mple/a']) {
              const error = failure(await send(request11('GET', target, 'Host: example.com')));
              assert.deepEqual([error.status, error.code, error.expose], [400, 'UNBLOCK_ERR_POOL_BAD_URL', true], target);
            }
          });
        });

        describe('when the target is *', () => {
          it('should have the URL with an empty path', async () => {
            const request = seen(await send(request11('OPTIONS', '*', 'Host: example.com')));
            assert.deepEqual([request.method, request.url, request.pathname], ['OPTIONS', 'http://example.com/', '/']);
          });
        });

        describe('when there is no Host header', () => {
          it('should use the local address and port (HTTP/1.0)', async () => {
            const request = seen(await send('GET /x?y=1 HTTP/1.0\r\n\r\n'));
            assert.equal(request.url, `http://127.0.0.1:${served.port}/x?y=1`);
          });

          it('should treat an empty Host header as none', async () => {
            const request = seen(await send(request11('GET', '/x', 'Host:')));
            assert.equal(request.url, `http://127.0.0.1:${served.port}/x`);
          });

          it('should put an IPv6 local address in brackets', async (t) => {
            const v6 = await serveIpv6(chain(offload(fixture('fetch-request.mjs'), options()), renderError));
            if (!v6) {
              t.skip('no IPv6 loopback on this host');
              return;
            }
            try {
              const request = seen(await rawRequest(v6.port, 'GET /x HTTP/1.0\r\n\r\n', '::1'));
              assert.equal(request.url, `http://[::1]:${v6.port}/x`);
            } finally {
              await v6.close();
            }
          });
        });

        describe('when the Host header is not a valid host', () => {
          it('should respond 400 UNBLOCK_ERR_POOL_BAD_URL instead of moving the path', async () => {
            // Each would put another path, or another host, in the URL than the client sent.
            for (const host of ['example.com/admin?', 'example.com#', 'user@example.com', 'example.com\\admin', 'exa mple.com', 'bücher.example']) {
              const error = failure(await send(request11('GET', '/public', `Host: ${host}`)));
              assert.deepEqual([error.status, error.code, error.expose], [400, 'UNBLOCK_ERR_POOL_BAD_URL', true], host);
              assert.match(error.message, /the Host header is not a valid host/);
            }
          });

          it('should respond 400 to a host of the right shape that no URL can hold', async () => {
            for (const host of ['example.com:65536', '256.0.0.1', '[::zz]', 'a%2Fb']) {
              const error = failure(await send(request11('GET', '/public', `Host: ${host}`)));
              assert.deepEqual([error.status, error.code], [400, 'UNBLOCK_ERR_POOL_BAD_URL'], host);
            }
          });

          it('should accept an IPv6 address and a port', async () => {
            const request = seen(await send(request11('GET', '/x', 'Host: [::1]:8080')));
            assert.equal(request.url, 'http://[::1]:8080/x');
          });
        });
      });

      describe('over HTTP/2', () => {
        let served: Http2Listening;
        before(async () => {
          served = await serveHttp2(http2.createServer(), offload(fixture('fetch-request.mjs'), options()));
        });
        after(() => served.close());

        it('should have an absolute URL of :scheme, :authority and :path, and no pseudo-header among the headers', async () => {
          const outcome = await served.send({ ':method': 'DELETE', ':path': '/a/b?x=1', ':authority': 'example.com:8443', 'x-rep': ['one', 'two'] });
          assert.equal(outcome.status, 200, outcome.body);
          const request = JSON.parse(outcome.body) as Seen;
          assert.equal(request.url, 'http://example.com:8443/a/b?x=1');
          assert.equal(request.method, 'DELETE');
          assert.deepEqual(request.headers, [['x-rep', 'one, two']]);
        });

        it('should have the authority the client connected to by default', async () => {
          const request = JSON.parse((await served.send({ ':path': '/p?q=1' })).body) as Seen;
          assert.equal(request.url, `http://127.0.0.1:${served.client.socket.remotePort}/p?q=1`);
        });

        it('should carry a body sent without Content-Length', async () => {
          const request = JSON.parse((await served.send({ ':method': 'POST', ':path': '/upload' }, ['first ', 'second'])).body) as Seen;
          assert.deepEqual([request.method, request.body], ['POST', 'first second']);
        });

        it('should have the URL with an empty path for OPTIONS *', async () => {
          const request = JSON.parse((await served.send({ ':method': 'OPTIONS', ':path': '*', ':authority': 'example.com' })).body) as Seen;
          assert.deepEqual([request.method, request.url], ['OPTIONS', 'http://example.com/']);
        });

        it('should respond 400 UNBLOCK_ERR_POOL_BAD_URL to a :scheme other than http and https', async () => {
          const error = failure(await served.send({ ':path': '/p', ':scheme': 'ftp' }));
          assert.deepEqual([error.status, error.code], [400, 'UNBLOCK_ERR_POOL_BAD_URL']);
        });
      });
    });
  }

  it('should have an https URL over HTTP/2 with TLS', async () => {
    const server = http2.createSecureServer({ key: readFileSync(fixture('tls-key.pem')), cert: readFileSync(fixture('tls-cert.pem')) });
    const secure = await serveHttp2(server, offload(fixture('fetch-request.mjs'), { pool }), true);
    try {
      const outcome = await secure.send({ ':path': '/secure?x=1' });
      assert.equal(outcome.status, 200, outcome.body);
      const request = JSON.parse(outcome.body) as Seen;
      assert.match(request.url, /^https:\/\/127\.0\.0\.1:\d+\/secure\?x=1$/);
    } finally {
      await secure.close();
    }
  });
});
