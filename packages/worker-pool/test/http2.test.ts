import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2, { type Http2SecureServer, type Http2Server } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { listenHttp2, type Http2Listening } from '../../../test/support/http2.js';
import { createPool, offload, type OffloadMiddleware, type Pool } from '../src/index.js';
import { fixture, renderError } from './helpers.js';

/** Serves `middleware` on node:http2's compatibility API, behind one that sets a header, errors rendered as JSON. */
function serveHttp2(server: Http2Server | Http2SecureServer, middleware: OffloadMiddleware, secure = false): Promise<Http2Listening> {
  server.on('request', (req, res) => {
    const request = req as unknown as IncomingMessage;
    const response = res as unknown as ServerResponse;
    response.setHeader('X-Upstream', 'from main');
    middleware(request, response, (err) => renderError(err, request, response, () => {}));
  });
  return listenHttp2(server, secure ? { ca: readFileSync(fixture('tls-cert.pem')) } : undefined);
}

describe('offload() on the HTTP/2 compatibility API', () => {
  let pool: Pool;
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  before(() => {
    pool = createPool({ maxThreads: 2, minThreads: 1 });
    process.on('warning', onWarning);
  });
  after(async () => {
    process.off('warning', onWarning);
    await pool.close();
  });

  for (const inline of [false, true]) {
    describe(inline ? 'inline' : 'on the pool', () => {
      let echo: Http2Listening;
      let responses: Http2Listening;
      let failures: Http2Listening;
      before(async () => {
        const options = inline ? { inline } : { pool };
        echo = await serveHttp2(http2.createServer(), offload(fixture('echo.mjs'), options));
        responses = await serveHttp2(http2.createServer(), offload(fixture('response.mjs'), options));
        failures = await serveHttp2(http2.createServer(), offload(fixture('fail.mjs'), options));
      });
      after(async () => {
        await echo.close();
        await responses.close();
        await failures.close();
      });

      it('should carry method, URL with query, version, the pseudo-headers and the peer address', async () => {
        const outcome = await echo.send({ ':method': 'DELETE', ':path': '/a/b?x=1&x=2', 'x-rep': ['one', 'two'] });
        assert.equal(outcome.status, 200);
        const seen = JSON.parse(outcome.body) as Record<string, unknown> & { headers: Record<string, string>; rawHeaders: string[] };
        assert.equal(seen.method, 'DELETE');
        assert.equal(seen.url, '/a/b?x=1&x=2');
        assert.equal(seen.httpVersion, '2.0');
        assert.equal(seen.headers[':path'], '/a/b?x=1&x=2');
        assert.equal(seen.headers['x-rep'], 'one, two');
        assert.ok(seen.rawHeaders.includes(':authority'));
        assert.equal(seen.remoteAddress, '127.0.0.1');
        assert.equal(seen.encrypted, false);
        assert.equal(seen.inheritedHeader, 'from main');
        assert.equal(seen.bodyLength, 0);
      });

      it('should give the request\'s trailers in req.trailers', async () => {
        const stream = echo.client.request({ ':method': 'POST', ':path': '/trailed' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
        stream.end('hello');
        let body = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (body += chunk));
        await once(stream, 'end');
        const seen = JSON.parse(body) as Record<string, unknown>;
        assert.equal(seen.body, 'hello');
        assert.deepEqual([seen.trailers, seen.rawTrailers], [{ 'x-checksum': 'abc' }, ['x-checksum', 'abc']]);
      });

      it('should hand the handler a body sent with or without Content-Length', async () => {
        const sized = JSON.parse((await echo.send({ ':method': 'POST', ':path': '/sized', 'content-length': '5' }, ['hello'])).body) as Record<string, unknown>;
        assert.equal(sized.body, 'hello');
        // HTTP/2 needs no Content-Length: the body is whatever DATA frames follow.
        const streamed = JSON.parse((await echo.send({ ':method': 'POST', ':path': '/streamed' }, ['first ', 'second ', 'third'])).body) as Record<string, unknown>;
        assert.equal(streamed.body, 'first second third');
        assert.equal(streamed.headers && (streamed.headers as Record<string, unknown>)['content-length'], undefined);
      });

      it('should send status, headers, repeated Set-Cookie, streamed bodies and trailers, without a reason phrase', async () => {
        const status = await responses.send({ ':path': '/status' });
        assert.deepEqual([status.status, status.body, status.ending], [418, 'teapot', 'end']);
        const cookies = await responses.send({ ':path': '/cookies' });
        assert.deepEqual(cookies.headers['set-cookie'], ['a=1', 'b=2', 'c=3']);
        assert.equal(cookies.headers['x-upstream'], 'from main');
        const big = await responses.send({ ':path': '/big?mib=4' });
        assert.equal(big.ending, 'end');
        assert.equal(big.body.length, 4 * 1024 * 1024);
        assert.match(big.body, /^x+$/);
        const head = await responses.send({ ':method': 'HEAD', ':path': '/length' });
        assert.deepEqual([head.status, head.body, head.ending], [200, '', 'end']);
        const empty = await responses.send({ ':path': '/no-content' });
        assert.deepEqual([empty.status, empty.body, empty.ending], [204, '', 'end']);
        const trailed = await responses.send({ ':path': '/trailers' });
        assert.deepEqual([trailed.body, trailed.trailers['x-checksum']], ['data', 'abc']);
        const whole = await responses.send({ ':path': '/trailers-in-one-end' });
        assert.deepEqual([whole.body, whole.trailers['x-checksum']], ['whole', 'xyz']);
        // Node warns when a reason phrase is set on an HTTP/2 response.
        assert.deepEqual(warnings, []);
      });

      it('should pass errors before headers to next(err) and reset only the stream after', async () => {
        const early = await failures.send({ ':path': '/http-error' });
        assert.equal(early.status, 404);
        assert.equal((JSON.parse(early.body) as { code: string }).code, 'REPORT_MISSING');
        for (const path of ['/after-headers', '/destroy']) {
          const late = await failures.send({ ':path': path });
          assert.deepEqual([late.status, late.body, late.ending], [200, 'partial', 'ERR_HTTP2_STREAM_ERROR'], path);
        }
        // The connection, which other requests share, is still open.
        assert.equal(failures.client.destroyed, false);
        assert.equal((await failures.send({ ':path': '/http-error' })).status, 404);
      });
    });
  }

  it('should tell the handler the request came over TLS', async () => {
    const server = http2.createSecureServer({ key: readFileSync(fixture('tls-key.pem')), cert: readFileSync(fixture('tls-cert.pem')) });
    const secure = await serveHttp2(server, offload(fixture('echo.mjs'), { pool }), true);
    try {
      const seen = JSON.parse((await secure.send({ ':path': '/secure' })).body) as Record<string, unknown>;
      assert.equal(seen.encrypted, true);
      assert.equal(seen.httpVersion, '2.0');
    } finally {
      await secure.close();
    }
  });

  it('should abort the handler when the client resets its stream, and keep serving the session', async () => {
    const served = await serveHttp2(http2.createServer(), offload(fixture('response.mjs'), { pool }));
    try {
      const stream = served.client.request({ ':path': '/big?mib=64' });
      await once(stream, 'response');
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await once(stream, 'close');
      const deadline = Date.now() + 5000;
      while (pool.stats().pending > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(pool.stats().pending, 0);
      const next = await served.send({ ':path': '/length' });
      assert.deepEqual([next.status, next.body], [200, 'exactly']);
    } finally {
      await served.close();
    }
  });
});
