import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { chain } from '@unblock/chain';
import { waitForBody, type BodyError, type RequestWithBody } from '../src/index.js';
import { serve } from '../../../test/support/http.js';
import { RawClient, codes, eventually, request, serveChain } from './helpers.js';

type Next = (err?: unknown) => void;

/** Answers `<method> <body>`, with a Content-Length, so responses can be told apart on one connection. */
function say(req: IncomingMessage, res: ServerResponse): void {
  res.end(`${req.method} ${(req as RequestWithBody).body?.toString() ?? '-'}`);
}

const chunked = (...chunks: string[]) => chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';

describe('waitForBody() on the connection', () => {
  describe('with keep-alive and pipelining', () => {
    it('should answer pipelined requests in order, each with its own body', async (t) => {
      const { port } = await serveChain(t, waitForBody(), say);
      const client = await RawClient.open(t, port);
      await client.write(
        Buffer.concat([
          request('POST', '/', { 'content-length': 3 }, 'one'),
          request('GET', '/', {}),
          request('PUT', '/', { 'transfer-encoding': 'chunked' }, chunked('tw', 'o')),
          request('POST', '/', { 'content-length': 0, connection: 'close' }),
        ]),
      );
      const responses = await client.responses(4);
      assert.deepEqual(
        responses.map((r) => r.body),
        ['POST one', 'GET -', 'PUT two', 'POST '],
      );
      await client.closed;
    });

    it('should read a body that arrives in pieces behind a pipelined request', async (t) => {
      const { port } = await serveChain(t, waitForBody(), say);
      const client = await RawClient.open(t, port);
      await client.write(Buffer.concat([request('POST', '/', { 'content-length': 2 }, 'a1'), request('POST', '/', { 'content-length': 6 }, 'b2')]));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await client.write('3456');
      const responses = await client.responses(2);
      assert.deepEqual(
        responses.map((r) => r.body),
        ['POST a1', 'POST b23456'],
      );
    });
  });

  describe('after an error', () => {
    it('should drain a body within drainLimit and keep the connection for the next request', async (t) => {
      const { port, errors } = await serveChain(t, waitForBody({ limit: 1000, drainLimit: 5000 }), say);
      const client = await RawClient.open(t, port);
      await client.write(Buffer.concat([request('POST', '/', { 'content-length': 3000 }, 'z'.repeat(3000)), request('POST', '/', { 'content-length': 4 }, 'next')]));
      const [first, second] = await client.responses(2);
      assert.equal(first!.status, 413);
      assert.notEqual(first!.headers.connection, 'close');
      assert.equal(second!.body, 'POST next');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_TOO_LARGE']);
    });

    it('should drain the rest of a chunked body that crossed the limit while being read, then close', async (t) => {
      let seen: IncomingMessage | undefined;
      const remember = (req: IncomingMessage, _res: ServerResponse, next: Next) => {
        seen = req;
        next();
      };
      const { port } = await serveChain(t, remember, waitForBody({ limit: 1000 }), say);
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'transfer-encoding': 'chunked' }, chunked('q'.repeat(800), 'q'.repeat(800), 'q'.repeat(800))));
      const [first] = await client.responses(1);
      assert.equal(first!.status, 413);
      // A chunked body may go on for ever: the connection is not promised to stay.
      assert.equal(first!.headers.connection, 'close');
      // Read to its end, not left paused in the socket.
      await eventually(() => seen!.readableEnded, 'the rest of the body to be drained');
    });

    it('should keep the connection when a compressed body decodes over the limit but fits drainLimit', async (t) => {
      const { port, errors } = await serveChain(t, waitForBody({ limit: 1000 }), say);
      const client = await RawClient.open(t, port);
      const gz = gzipSync('g'.repeat(100_000));
      await client.write(Buffer.concat([request('POST', '/', { 'content-length': gz.length, 'content-encoding': 'gzip' }, gz), request('POST', '/', { 'content-length': 5 }, 'after')]));
      const [first, second] = await client.responses(2);
      assert.equal(first!.status, 413);
      assert.notEqual(first!.headers.connection, 'close');
      assert.equal(second!.body, 'POST after');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_TOO_LARGE']);
    });

    it('should close the connection when the rest is over drainLimit', async (t) => {
      const { port } = await serveChain(t, waitForBody({ limit: 10, drainLimit: 1000 }), say);
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 5000 }, 'w'.repeat(100)));
      const [res] = await client.responses(1);
      assert.equal(res!.status, 413);
      assert.equal(res!.headers.connection, 'close');
      await client.closed;
    });

    it("should answer through finalhandler (the chain's end) once a body within drainLimit is drained", async (t) => {
      const { port } = await serve(t, chain(waitForBody({ limit: 10, drainLimit: 100_000 }), say));
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 50_000 }, 'u'.repeat(25_000)));
      await new Promise((resolve) => setTimeout(resolve, 50));
      // finalhandler waits for the request to end before it answers.
      assert.equal(client.text, '');
      await client.write('u'.repeat(25_000));
      const [res] = await client.responses(1);
      assert.equal(res!.status, 413);
    });

    it('should close the connection without an answer from finalhandler when the body is over drainLimit', async (t) => {
      const { port } = await serve(t, chain(waitForBody({ limit: 10, drainLimit: 1000 }), say));
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 50_000 }, 'u'.repeat(50_000)));
      await client.closed;
      assert.equal(client.text, '');
    });

    it('should destroy the connection of a client that keeps sending past drainLimit', async (t) => {
      const { port } = await serveChain(t, waitForBody({ limit: 10, drainLimit: 20_000 }), say);
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 10_000_000 }));
      const [res] = await client.responses(1);
      assert.equal(res!.status, 413);
      let sent = 0;
      while (!client.socket.destroyed && sent < 2_000_000) {
        await client.write(Buffer.alloc(10_000));
        sent += 10_000;
      }
      await client.closed;
      assert.ok(sent < 2_000_000, `the server still read after ${sent} bytes`);
    });
  });

  describe('when the client lies about Content-Length', () => {
    it('should fail with LENGTH_MISMATCH when the body ends short (Node answers 400)', async (t) => {
      let reached = false;
      const { port, errors } = await serveChain(t, waitForBody(), () => (reached = true));
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 10 }, 'short'));
      await new Promise((resolve) => setTimeout(resolve, 30));
      client.socket.end();
      await client.closed;
      assert.match(client.text, /^HTTP\/1\.1 400 /);
      await eventually(() => errors.length === 1, 'the error');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_LENGTH_MISMATCH']);
      const err = errors[0] as BodyError & { expected: number; received: number };
      assert.deepEqual([err.status, err.expected, err.received], [400, 10, 5]);
      assert.equal(reached, false);
    });

    it('should read exactly Content-Length bytes when more are sent; the rest is not this body', async (t) => {
      const { port } = await serveChain(t, waitForBody(), say);
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 3 }, 'abcPOST'));
      const [res] = await client.responses(1);
      assert.equal(res!.body, 'POST abc');
      await client.write(' / HTTP/1.1\r\ncontent-length: three\r\n\r\n');
      await client.closed;
      assert.match(client.text, /HTTP\/1\.1 400 Bad Request/);
    });
  });

  describe('when the client goes away', () => {
    it('should pass ABORTED, a 400 that is not a server error', async (t) => {
      let reached = false;
      const { port, errors } = await serveChain(t, waitForBody(), () => (reached = true));
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 1000 }, 'partial'));
      await new Promise((resolve) => setTimeout(resolve, 30));
      client.socket.resetAndDestroy();
      await eventually(() => errors.length === 1, 'the error');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_ABORTED']);
      const err = errors[0] as BodyError & { received: number };
      assert.deepEqual([err.status, err.expose, err.received], [400, true, 7]);
      assert.equal(reached, false);
    });

    it('should not be logged as a server error at the end of a chain', async (t) => {
      const logged = t.mock.method(console, 'error', () => {});
      let closed!: () => void;
      const responseClosed = new Promise<void>((resolve) => (closed = resolve));
      const watch = (_req: IncomingMessage, res: ServerResponse, next: Next) => {
        res.once('close', closed);
        next();
      };
      const { port } = await serve(t, chain(watch, waitForBody(), () => {}));
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 1000 }, 'partial'));
      await new Promise((resolve) => setTimeout(resolve, 30));
      client.socket.resetAndDestroy();
      await responseClosed;
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(logged.mock.callCount(), 0);
    });

    it('should pass ABORTED while inflating', async (t) => {
      const { port, errors } = await serveChain(t, waitForBody(), () => {});
      const client = await RawClient.open(t, port);
      const gz = gzipSync('x'.repeat(10_000));
      await client.write(request('POST', '/', { 'content-length': gz.length, 'content-encoding': 'gzip' }, gz.subarray(0, 20)));
      await new Promise((resolve) => setTimeout(resolve, 30));
      client.socket.resetAndDestroy();
      await eventually(() => errors.length === 1, 'the error');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_ABORTED']);
    });

    it('should pass ABORTED, not hang, when the client was gone before the middleware ran', async (t) => {
      const { port, errors } = await serveChain(
        t,
        (_req: IncomingMessage, _res: ServerResponse, next: Next) => void setTimeout(next, 100),
        waitForBody(),
        () => {},
      );
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 1000 }, 'partial'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      client.socket.resetAndDestroy();
      await eventually(() => errors.length === 1, 'the error');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_ABORTED']);
    });
  });

  describe('with timeout', () => {
    it('should respond 408 to a slow sender and close the connection', async (t) => {
      const { port, errors } = await serveChain(t, waitForBody({ timeout: 150 }), say);
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 10 }, 'slow'));
      const [res] = await client.responses(1);
      assert.equal(res!.status, 408);
      assert.equal(res!.headers.connection, 'close');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_TIMEOUT']);
      assert.equal((errors[0] as { received: number }).received, 4);
      await client.closed;
    });

    it('should count the whole body, not the gaps between chunks', async (t) => {
      const { port, errors } = await serveChain(t, waitForBody({ timeout: '300ms' }), say);
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'transfer-encoding': 'chunked' }));
      const started = Date.now();
      while (parseCount(client.text) === 0 && Date.now() - started < 3000) {
        await client.write('1\r\nx\r\n');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const [res] = await client.responses(1);
      assert.equal(res!.status, 408);
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_TIMEOUT']);
    });

    it('should close the connection after the 408 even when the client keeps it open', async (t) => {
      const { port } = await serveChain(t, waitForBody({ timeout: 100 }), say);
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 1000 }, 'a'));
      await client.responses(1);
      // Ignore the Connection: close and keep the connection open without sending.
      await client.closed;
    });

    for (const [sender, head, trickles] of [
      ['stalls with a Content-Length', request('POST', '/', { 'content-length': 100 }, 'abc'), false],
      ['stalls with a chunked body', request('POST', '/', { 'transfer-encoding': 'chunked' }, '3\r\nabc\r\n'), false],
      ['trickles, and goes on after the timeout', request('POST', '/', { 'content-length': 100 }), true],
    ] as const) {
      it(`should let finalhandler (the chain's end) answer 408 at once to a sender that ${sender}`, async (t) => {
        const { port } = await serve(t, chain(waitForBody({ timeout: 150 }), say));
        const client = await RawClient.open(t, port);
        await client.write(head);
        if (trickles) {
          const trickle = setInterval(() => void client.write('a'), 30);
          t.after(() => clearInterval(trickle));
        }
        // finalhandler waits for the request to end: a timed-out one is ended for it, not drained.
        const [res] = await client.responses(1);
        assert.equal(res!.status, 408);
        assert.equal(res!.headers.connection, 'close');
        await client.closed;
      });
    }

    it('should destroy the connection when no response has gone out within timeout of the error', async (t) => {
      const neverAnswers = (_err: unknown, _req: IncomingMessage, _res: ServerResponse, _next: Next) => {};
      const { port } = await serve(t, chain(waitForBody({ timeout: 100 }), say, neverAnswers));
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 100 }, 'abc'));
      await client.closed;
      assert.equal(client.text, '');
    });
  });
});

function parseCount(text: string): number {
  return (text.match(/HTTP\/1\.1 [2-5]\d\d /g) ?? []).length;
}
