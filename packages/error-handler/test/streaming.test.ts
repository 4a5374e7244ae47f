import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { PassThrough, Readable, pipeline } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { chain } from '@unblock/chain';
import createError from 'http-errors';
import { errorHandler } from '../src/index.js';
import { rawRequest, serve } from '../../../test/support/http.js';
import { eventually, serveWithErrorHandler } from './helpers.js';

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

/** A stream that sends `chunks` and then fails with `err`. */
function failingAfter(chunks: string[], err: Error): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent < chunks.length) this.push(chunks[sent++]);
      else setImmediate(() => this.destroy(err));
    },
  });
}

/** Splits a raw HTTP/1.1 response into its head and the bytes after it. */
function split(text: string): { head: string; body: string } {
  const end = text.indexOf('\r\n\r\n');
  return { head: text.slice(0, end), body: text.slice(end + 4) };
}

describe('errorHandler(options) after headers are sent', () => {
  describe('when a stream piped into a chunked response fails', () => {
    it('should destroy the response: no final chunk, nothing after, connection closed', async (t) => {
      const { port, logged } = await serveWithErrorHandler(t, (_req, res) => {
        res.setHeader('Content-Type', 'text/plain');
        failingAfter(['first,', 'second,'], new Error('disk gone')).pipe(res);
      });
      const { text, closed } = await rawRequest(port, GET);
      const { head, body } = split(text);
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(head, /\r\nTransfer-Encoding: chunked/);
      assert.equal(body, '6\r\nfirst,\r\n7\r\nsecond,\r\n', 'the chunks sent, and no terminating 0-chunk');
      assert.ok(closed, 'the server closed the connection');
      await eventually(() => logged.length === 1, 'the error logged');
      assert.equal((logged[0]!.err as Error).message, 'disk gone');
      assert.deepEqual(logged[0]!.info, { status: 500, headersSent: true, responseEnded: false, clientGone: false });
    });

    it('should make a fetch body read reject', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, res) => {
        failingAfter(['a'.repeat(1000)], new Error('disk gone')).pipe(res);
      });
      const res = await fetch(url);
      assert.equal(res.status, 200);
      await assert.rejects(res.text());
    });
  });

  describe('when a stream piped into a response with Content-Length fails', () => {
    it('should leave the body short and close the connection', async (t) => {
      const { port } = await serveWithErrorHandler(t, (_req, res) => {
        res.setHeader('Content-Length', '100');
        failingAfter(['0123456789'], new Error('disk gone')).pipe(res);
      });
      const { text, closed } = await rawRequest(port, GET);
      const { head, body } = split(text);
      assert.match(head, /\r\nContent-Length: 100/);
      assert.equal(body, '0123456789');
      assert.ok(closed);
    });

    it('should make a fetch body read reject', async (t) => {
      const { url } = await serveWithErrorHandler(t, (_req, res) => {
        res.setHeader('Content-Length', '100000');
        failingAfter(['x'.repeat(50000)], new Error('disk gone')).pipe(res);
      });
      const res = await fetch(url);
      await assert.rejects(res.arrayBuffer());
    });
  });

  describe('when the app calls next(err) after writing', () => {
    it('should destroy the response and log once', async (t) => {
      const { port, logged } = await serveWithErrorHandler(t, (_req, res, next) => {
        res.write('partial');
        setTimeout(() => next(createError(502, 'upstream failed')), 20);
      });
      const { text, closed } = await rawRequest(port, GET);
      assert.ok(text.endsWith('\r\n\r\n7\r\npartial\r\n'), JSON.stringify(text));
      assert.ok(closed);
      await eventually(() => logged.length === 1, 'the error logged');
      assert.equal(logged[0]!.info.status, 502);
      assert.equal(logged[0]!.info.headersSent, true);
    });
  });

  describe('when the stream fails before anything was written', () => {
    it('should render a proper error response (src.pipe(res) would otherwise hang)', async (t) => {
      const { url, logged } = await serveWithErrorHandler(t, (_req, res) => {
        failingAfter([], Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', status: 404, expose: false })).pipe(res);
      });
      const res = await fetch(url);
      assert.equal(res.status, 404);
      assert.equal(await res.text(), '404 Not Found\n');
      assert.equal(logged.length, 1);
    });

    it('should log once when stream.pipeline also passes the error to next (pipeline itself destroys the response)', async (t) => {
      const { port, logged } = await serveWithErrorHandler(t, (_req, res, next) => {
        pipeline(failingAfter([], new Error('disk gone')), res, (err) => next(err));
      });
      const { text, closed } = await rawRequest(port, GET);
      assert.equal(text, '', 'Node destroyed the response before any header');
      assert.ok(closed);
      await eventually(() => logged.length > 0, 'the error logged');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(logged.length, 1);
      assert.equal(logged[0]!.info.clientGone, false, 'a response the server destroyed is not a client that left');
    });
  });

  describe('when an error arrives after the response has ended', () => {
    it('should log it, write nothing, and keep the connection usable', async (t) => {
      const { port, logged } = await serveWithErrorHandler(t, (req, res, next) => {
        res.end(`done ${req.url}`);
        if (req.url === '/late') setTimeout(() => next(new Error('cleanup failed')), 20);
      });
      const socket = connect(port, '127.0.0.1');
      t.after(() => socket.destroy());
      let received = '';
      socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
      socket.write('GET /late HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually(() => logged.length === 1, 'the late error logged');
      assert.deepEqual(logged[0]!.info, { status: 500, headersSent: true, responseEnded: true, clientGone: false });
      socket.write('GET /again HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually(() => received.includes('done /again'), 'the second response');
      assert.equal(received.match(/HTTP\/1\.1/g)?.length, 2, 'exactly two responses on the connection');
      assert.ok(received.includes('Content-Length: 10\r\n\r\ndone /late'));
    });

    it('should log a write after end instead of crashing', async (t) => {
      const { url, logged } = await serveWithErrorHandler(t, (_req, res) => {
        res.end('done');
        res.write('more');
      });
      const res = await fetch(url);
      assert.equal(await res.text(), 'done');
      await eventually(() => logged.length === 1, 'the error logged');
      assert.equal((logged[0]!.err as { code?: string }).code, 'ERR_STREAM_WRITE_AFTER_END');
      assert.equal(logged[0]!.info.responseEnded, true);
    });
  });

  describe('when the client has gone', () => {
    it('should report clientGone and not treat it as a server error', async (t) => {
      const source = new PassThrough();
      let served!: () => void;
      const started = new Promise<void>((resolve) => (served = resolve));
      const { port, logged } = await serveWithErrorHandler(t, (_req, res) => {
        source.pipe(res);
        source.write('hello');
        res.on('close', () => setImmediate(() => source.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))));
        served();
      });
      const socket = connect(port, '127.0.0.1');
      socket.write(GET);
      await started;
      await once(socket, 'data');
      socket.destroy();
      await eventually(() => logged.length === 1, 'the error logged');
      assert.equal(logged[0]!.info.clientGone, true);
    });
  });

  describe('the default log', () => {
    it('should write a 5xx once to stderr with method and URL, and not a 4xx or a client that left', async (t) => {
      const lines: string[] = [];
      const original = console.error;
      console.error = (...args: unknown[]) => void lines.push(args.map(String).join(' '));
      t.after(() => (console.error = original));
      const errors = errorHandler();
      const { url } = await serve(
        t,
        chain(
          errors,
          (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
            if (req.url === '/stream') {
              res.write('x');
              setTimeout(() => next(new Error('stream broke')), 20);
            } else next(req.url === '/missing' ? createError(404) : new Error('db down'));
          },
          errors.terminal,
        ),
      );
      assert.equal((await fetch(`${url}/missing`)).status, 404);
      assert.equal((await fetch(`${url}/broken?x=1`, { method: 'POST' })).status, 500);
      await assert.rejects((await fetch(`${url}/stream`)).text());
      await eventually(() => lines.length === 2, 'two lines');
      assert.match(lines[0]!, /^POST \/broken\?x=1 → 500\nError: db down\n/);
      assert.match(lines[1]!, /^GET \/stream → 500 \(after headers were sent: response aborted\)\nError: stream broke/);
    });

    it('should not let a throwing log hook change the response', async (t) => {
      const lines: unknown[] = [];
      const original = console.error;
      console.error = (value: unknown) => void lines.push(value);
      t.after(() => (console.error = original));
      const hooks = [
        () => { throw new Error('logger down'); },
        async () => { throw new Error('logger down'); },
        // Another realm's promise: left unhandled, its rejection would end the process.
        () => runInNewContext('Promise.reject(new Error("logger down"))') as unknown,
      ];
      for (const log of hooks) {
        const { url } = await serveWithErrorHandler(t, (_req, _res, next) => next(createError(404)), { log });
        const res = await fetch(url);
        assert.equal(res.status, 404);
        assert.equal(await res.text(), '404 Not Found\n');
      }
      await eventually(() => lines.length === hooks.length, 'every failure written');
      for (const line of lines) assert.equal((line as { code?: string }).code, 'UNBLOCK_ERR_ERROR_HANDLER_LOG_FAILED');
    });
  });

  describe('the body of a healthy response', () => {
    it('should pass through unbuffered: the first chunk reaches the client before the handler ends', async (t) => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const { url } = await serveWithErrorHandler(t, async (_req, res) => {
        res.write('first');
        await released;
        res.end('last');
      });
      const res = await fetch(url);
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.equal(Buffer.from(first.value!).toString(), 'first');
      release();
      let rest = '';
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += Buffer.from(chunk.value).toString();
      assert.equal(rest, 'last');
    });
  });
});
