import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { describe, it, type TestContext } from 'node:test';
import { listenHttp2 } from '../../../test/support/http2.js';
import { waitForBody, type WaitForBodyOptions } from '../src/index.js';
import { bytesOf, codes, echo, recordErrors, type Echoed } from './helpers.js';

/** waitForBody(options), then echo, on node:http2's compatibility API; warnings Node emits meanwhile are collected. */
async function serveHttp2(t: TestContext, options: WaitForBodyOptions) {
  const wait = waitForBody(options);
  const { errors, handler } = recordErrors();
  const server = http2.createServer((req, res) => {
    const request = req as unknown as IncomingMessage;
    const response = res as unknown as ServerResponse;
    wait(request, response, (err) => (err ? handler(err, request, response, () => {}) : echo(request, response)));
  });
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  const served = await listenHttp2(server);
  t.after(() => {
    process.off('warning', onWarning);
    return served.close();
  });
  return { ...served, errors, warnings };
}

describe('waitForBody(options) on the HTTP/2 compatibility API', () => {
  it('should read a body sent with or without Content-Length, and leave requests without one alone', async (t) => {
    const served = await serveHttp2(t, {});
    const sized = await served.send({ ':method': 'POST', ':path': '/', 'content-length': '5' }, ['hello']);
    assert.equal(bytesOf(JSON.parse(sized.body) as Echoed).toString(), 'hello');
    // HTTP/2 needs no Content-Length: the body is whatever DATA frames follow.
    const streamed = await served.send({ ':method': 'POST', ':path': '/' }, ['first ', 'second ', 'third']);
    const echoed = JSON.parse(streamed.body) as Echoed;
    assert.equal(echoed.kind, 'buffer');
    assert.equal(bytesOf(echoed).toString(), 'first second third');
    const none = await served.send({ ':path': '/' });
    assert.equal((JSON.parse(none.body) as Echoed).kind, 'undefined');
  });

  it('should read only the types asked for, by Content-Type alone', async (t) => {
    const served = await serveHttp2(t, { type: 'json' });
    const json = await served.send({ ':method': 'POST', ':path': '/', 'content-type': 'application/json' }, ['{"a":', '1}']);
    assert.equal(bytesOf(JSON.parse(json.body) as Echoed).toString(), '{"a":1}');
    const text = await served.send({ ':method': 'POST', ':path': '/', 'content-type': 'text/plain' }, ['not ', 'json']);
    assert.equal((JSON.parse(text.body) as Echoed).kind, 'undefined');
  });

  it('should answer a body over the limit with 413 and keep the connection for other streams', async (t) => {
    const served = await serveHttp2(t, { limit: 1000, drainLimit: 2000 });
    const over = await served.send({ ':method': 'POST', ':path': '/' }, ['x'.repeat(800), 'x'.repeat(800)]);
    assert.deepEqual([over.status, over.body], [413, '413 UNBLOCK_ERR_BODY_TOO_LARGE']);
    // Past drainLimit the rest is not read: the stream, not the connection, is dropped.
    const far = await served.send({ ':method': 'POST', ':path': '/' }, ['x'.repeat(800), 'x'.repeat(800), 'x'.repeat(3000)]);
    assert.equal(far.status, 413);
    assert.deepEqual(codes(served.errors), ['UNBLOCK_ERR_BODY_TOO_LARGE', 'UNBLOCK_ERR_BODY_TOO_LARGE']);
    assert.equal(served.client.destroyed, false);
    const after = await served.send({ ':method': 'POST', ':path': '/' }, ['still ', 'here']);
    assert.equal(bytesOf(JSON.parse(after.body) as Echoed).toString(), 'still here');
    // No `Connection: close` for Node to drop with a warning: HTTP/2 has none.
    assert.deepEqual(served.warnings, []);
  });
});
