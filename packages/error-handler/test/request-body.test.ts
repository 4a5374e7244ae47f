import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import createError from 'http-errors';
import { eventually, serveWithErrorHandler } from './helpers.js';

/** A raw connection that collects what the server sends and notes when it closes. */
function open(port: number): { socket: Socket; received: () => string; closed: () => boolean } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  return { socket, received: () => text, closed: () => closed };
}

const responses = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];

describe('errorHandler(options) and an unread request body', () => {
  describe('when the request has no body', () => {
    it('should keep the connection alive, also while the error is handled in the tick of the request head', async (t) => {
      const { port } = await serveWithErrorHandler(t, (req, res, next) => {
        if (req.url === '/fail') next(createError(404));
        else res.end('ok');
      });
      const conn = open(port);
      t.after(() => conn.socket.destroy());
      conn.socket.write('GET /fail HTTP/1.1\r\nHost: x\r\n\r\nPOST /fail HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually(() => responses(conn.received()).length === 3, 'three responses');
      assert.deepEqual(responses(conn.received()), ['HTTP/1.1 404', 'HTTP/1.1 404', 'HTTP/1.1 200']);
      assert.doesNotMatch(conn.received(), /Connection: close/);
    });
  });

  describe('when the body is within drainLimit', () => {
    it('should discard it and keep the connection for the next request', async (t) => {
      const { port } = await serveWithErrorHandler(t, (req, res, next) => {
        if (req.url === '/fail') next(createError(400));
        else res.end('ok');
      });
      const conn = open(port);
      t.after(() => conn.socket.destroy());
      conn.socket.write(`POST /fail HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n${'a'.repeat(2000)}`);
      conn.socket.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually(() => responses(conn.received()).length === 2, 'two responses');
      assert.deepEqual(responses(conn.received()), ['HTTP/1.1 400', 'HTTP/1.1 200']);
      assert.doesNotMatch(conn.received(), /Connection: close/);
      assert.equal(conn.closed(), false);
    });

    it('should resume a body the failed handler had paused half-read (as raw-body does), so the connection goes on', async (t) => {
      const { port } = await serveWithErrorHandler(t, (req, res, next) => {
        if (req.url !== '/fail') {
          res.end('ok');
          return;
        }
        req.once('data', () => {
          req.pause();
          next(createError(415));
        });
      });
      const conn = open(port);
      t.after(() => conn.socket.destroy());
      conn.socket.write(`POST /fail HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n${'a'.repeat(100)}`);
      await eventually(() => responses(conn.received()).length === 1, 'the error response, before the rest of the body');
      conn.socket.write(`${'a'.repeat(3900)}GET /next HTTP/1.1\r\nHost: x\r\n\r\n`);
      await eventually(() => responses(conn.received()).length === 2, 'the next response on the same connection');
      assert.deepEqual(responses(conn.received()), ['HTTP/1.1 415', 'HTTP/1.1 200']);
    });
  });

  for (const [what, head] of [
    ['larger than drainLimit', 'Content-Length: 10000000'],
    ['of unknown length (chunked)', 'Transfer-Encoding: chunked'],
    ['held back for 100-continue', 'Content-Length: 100\r\nExpect: 100-continue'],
  ] as const) {
    describe(`when the body is ${what}`, () => {
      it('should answer at once with Connection: close and close the connection', async (t) => {
        const { port } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(413)), { drainLimit: '1kb' });
        const conn = open(port);
        t.after(() => conn.socket.destroy());
        conn.socket.write(`POST / HTTP/1.1\r\nHost: x\r\n${head}\r\n\r\n`);
        await eventually(() => conn.closed(), 'the connection closed');
        // Node's server answers 100-continue itself unless told otherwise.
        assert.match(conn.received(), /^(HTTP\/1\.1 100 Continue\r\n\r\n)?HTTP\/1\.1 413 Payload Too Large\r\n/);
        assert.match(conn.received(), /\r\nConnection: close\r\n/);
        assert.ok(conn.received().endsWith('413 Payload Too Large\n'));
      });
    });
  }

  describe('when the error comes during a slow upload', () => {
    it('should answer before the upload ends, and a fetch gets the status', async (t) => {
      const { url, logged } = await serveWithErrorHandler(t, (req, _res, next) => {
        req.once('data', () => next(createError(422, 'bad first record')));
      });
      let sent = 0;
      let stop = false;
      t.after(() => (stop = true));
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (stop || sent >= 100) {
            controller.close();
            return;
          }
          sent++;
          await new Promise((resolve) => setTimeout(resolve, 20));
          controller.enqueue(new TextEncoder().encode('record\n'));
        },
      });
      const res = await fetch(url, { method: 'POST', body, duplex: 'half' } as RequestInit);
      assert.equal(res.status, 422);
      assert.equal(await res.text(), '422 Unprocessable Entity\nbad first record\n');
      assert.ok(sent < 100, `answered after ${sent} of 100 chunks`);
      assert.equal(logged.length, 1);
    });
  });
});
