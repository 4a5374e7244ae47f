// The packages composed on node:http2's compatibility API, served as an app
// would serve them: over TLS, with HTTP/1.1 allowed beside HTTP/2, one chain
// of the error handler, wait-for-body and offloaded handlers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { chain } from '@unblock/chain';
import { errorHandler } from '@unblock/error-handler';
import { waitForBody } from '@unblock/wait-for-body';
import { createPool, offload } from '@unblock/worker-pool';
import { listenHttp2, type Http2Listening } from './support/http2.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const tls = (name: string) => readFileSync(new URL(`../packages/worker-pool/test/fixtures/tls-${name}.pem`, import.meta.url));

describe('the packages on the HTTP/2 compatibility API', () => {
  const pool = createPool({ maxThreads: 2 });
  const errors = errorHandler();
  const app = chain(errors, waitForBody({ limit: 1000 }))
    .use('/blocking', offload(fixture('blocking-handler.js'), { pool }))
    .use('/koa', offload(fixture('koa-app.js'), { pool }))
    .use(errors.terminal);
  const server = http2.createSecureServer({ key: tls('key'), cert: tls('cert'), allowHTTP1: true }, (req, res) =>
    app(req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  let served: Http2Listening;
  before(async () => {
    served = await listenHttp2(server, { ca: tls('cert') });
  });
  after(async () => {
    await served.close();
    await pool.close();
  });

  it('should read a body sent without Content-Length and hand it to the offloaded handler', async () => {
    const answer = await served.send({ ':method': 'POST', ':path': '/blocking/render?x=1' }, ['first ', 'second']);
    assert.equal(answer.status, 200);
    const seen = JSON.parse(answer.body) as { url: string; originalUrl: string; bodyLength: number; inWorker: boolean };
    assert.deepEqual(seen.url, '/render?x=1');
    assert.deepEqual(seen.originalUrl, '/blocking/render?x=1');
    assert.equal(seen.bodyLength, 'first second'.length);
    assert.equal(seen.inWorker, true);
  });

  it('should run a whole Koa app offloaded', async () => {
    const answer = await served.send({ ':method': 'PUT', ':path': '/koa/items' }, ['12345']);
    assert.deepEqual(JSON.parse(answer.body), { url: '/items', bodyLength: 5, inWorker: true });
  });

  it("should render errors before headers and reset only the failing request's stream after", async () => {
    const tooLarge = await served.send({ ':method': 'POST', ':path': '/blocking/render', accept: 'application/problem+json' }, ['x'.repeat(600), 'x'.repeat(600)]);
    assert.equal(tooLarge.status, 413);
    assert.equal((JSON.parse(tooLarge.body) as { code: string }).code, 'UNBLOCK_ERR_BODY_TOO_LARGE');
    const before = await served.send({ ':path': '/blocking/render?fail=before', accept: 'application/problem+json' });
    assert.equal(before.status, 422);
    assert.equal((JSON.parse(before.body) as { code: string }).code, 'E_INPUT');
    const afterHeaders = await served.send({ ':method': 'POST', ':path': '/blocking/render?fail=after' }, ['body']);
    assert.deepEqual([afterHeaders.status, afterHeaders.body, afterHeaders.ending], [200, 'partial\n', 'ERR_HTTP2_STREAM_ERROR']);
    assert.equal(served.client.destroyed, false);
    assert.equal((await served.send({ ':method': 'POST', ':path': '/blocking/render' }, ['still served'])).status, 200);
  });

  it('should answer HTTP/1.1 clients of the same server alike', async () => {
    const { port } = server.address() as { port: number };
    const answer = await new Promise<{ status: number; version: string; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/blocking/render', ca: tls('cert'), agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, version: res.httpVersion, body }));
      });
      req.on('error', reject);
      req.end('over http/1.1');
    });
    assert.equal(answer.version, '1.1');
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as { bodyLength: number }).bodyLength, 'over http/1.1'.length);
  });
});
