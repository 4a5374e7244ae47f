import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, get as httpsGet } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { chain } from '@unblock/chain';
import bodyParser from 'body-parser';
import { createPool, detectKind, offload, type Pool } from '../src/index.js';
import { rawRequest as sharedRawRequest } from '../../../test/support/http.js';
import { fixture, json, serve, serveChain, timedGet, type Served } from './helpers.js';

/** A GET whose client reads nothing for 50 ms, then everything. */
function lateRead(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.pause();
      setTimeout(() => res.resume(), 50);
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

const upstreamHeader = (_req: IncomingMessage, res: ServerResponse, next: () => void): void => {
  res.setHeader('X-Upstream', 'from main');
  next();
};

describe('offload(module, options)', () => {
  let pool: Pool;
  before(() => {
    pool = createPool({ maxThreads: 2, minThreads: 1 });
  });
  after(() => pool.close());

  describe('the request the handler sees', () => {
    let served: Served;
    before(async () => {
      const echo = offload(fixture('echo.mjs'), { pool, forward: (req) => ({ user: req.headers['x-user'] ?? null }) });
      const rawBody = bodyParser.raw({ type: 'application/octet-stream', limit: '5mb' });
      const jsonBody = bodyParser.json();
      served = await serveChain(chain(upstreamHeader).use('/buffered', rawBody, echo).use('/parsed', jsonBody, echo).use('/mounted', echo).use(echo));
    });
    after(() => served.close());

    it('should carry method, URL with query, version, raw headers with repeats, and the peer address', async () => {
      const raw = await rawRequest(served.port, 'DELETE /a/b?x=1&x=2 HTTP/1.1\r\nHost: x\r\nX-Rep: one\r\nx-rep: two\r\nConnection: close\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 200 OK/);
      const seen = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Awaited<ReturnType<typeof json>>;
      assert.equal(seen.method, 'DELETE');
      assert.equal(seen.url, '/a/b?x=1&x=2');
      assert.equal(seen.httpVersion, '1.1');
      assert.equal(seen.headers['x-rep'], 'one, two');
      const rawHeaders: string[] = seen.rawHeaders;
      assert.deepEqual(rawHeaders.slice(2, 6), ['X-Rep', 'one', 'x-rep', 'two']);
      assert.equal(seen.remoteAddress, '127.0.0.1');
      assert.equal(typeof seen.remotePort, 'number');
      assert.equal(seen.encrypted, false);
    });

    it('should tell the handler the request came over TLS', async () => {
      const echo = offload(fixture('echo.mjs'), { pool });
      const tls = createHttpsServer({ key: readFileSync(fixture('tls-key.pem')), cert: readFileSync(fixture('tls-cert.pem')) }, (req, res) =>
        echo(req, res, () => res.end('unexpected')),
      );
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = tls.address() as AddressInfo;
        const body = await new Promise<string>((resolve, reject) => {
          httpsGet(`https://127.0.0.1:${port}/secure`, { ca: readFileSync(fixture('tls-cert.pem')) }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve(text));
          }).on('error', reject);
        });
        const seen = JSON.parse(body) as Record<string, unknown>;
        assert.equal(seen.encrypted, true);
        assert.equal(seen.url, '/secure');
      } finally {
        tls.closeAllConnections();
        await new Promise((resolve) => tls.close(resolve));
      }
    });

    it('should give the mount-relative URL and keep the original one', async () => {
      const seen = await json(fetch(`${served.url}/mounted/report?id=7`));
      assert.equal(seen.url, '/report?id=7');
      assert.equal(seen.originalUrl, '/mounted/report?id=7');
    });

    it('should stream an unread body into the worker', async () => {
      const body = 'x'.repeat(300_000);
      const seen = await json(fetch(`${served.url}/stream`, { method: 'PUT', body }));
      assert.equal(seen.bodyLength, body.length);
      assert.equal(seen.reqBody, undefined);
    });

    it('should hand over a buffered req.body as bytes, re-readable and as req.body', async () => {
      for (const size of [10, 1_000_000]) {
        const seen = await json(
          fetch(`${served.url}/buffered`, { method: 'POST', body: Buffer.alloc(size, 97), headers: { 'content-type': 'application/octet-stream' } }),
        );
        assert.equal(seen.bodyLength, size);
        assert.equal(seen.reqBody, `buffer:${size}`);
      }
    });

    it('should give the trailers of a chunked body in req.trailers, streamed or buffered upstream', async () => {
      const chunked = (path: string) =>
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Rep\r\nConnection: close\r\n\r\n` +
        '5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Rep: one\r\nx-rep: two\r\n\r\n';
      for (const path of ['/streamed', '/buffered']) {
        const raw = await rawRequest(served.port, chunked(path));
        assert.match(raw, /^HTTP\/1\.1 200 OK/, path);
        const seen = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
        assert.equal(seen.body, 'hello', path);
        assert.deepEqual(seen.trailers, { 'x-checksum': 'abc', 'x-rep': 'one, two' }, path);
        assert.deepEqual(seen.rawTrailers, ['X-Checksum', 'abc', 'X-Rep', 'one', 'x-rep', 'two'], path);
        assert.deepEqual(seen.trailersDistinct, { 'x-checksum': ['abc'], 'x-rep': ['one', 'two'] }, path);
      }
      // Without trailers, as in node: empty.
      const plain = await json(fetch(`${served.url}/streamed`, { method: 'POST', body: 'x' }));
      assert.deepEqual([plain.trailers, plain.rawTrailers], [{}, []]);
    });

    it('should clone a parsed req.body', async () => {
      const seen = await json(
        fetch(`${served.url}/parsed`, { method: 'POST', body: JSON.stringify({ a: [1, 2] }), headers: { 'content-type': 'application/json' } }),
      );
      assert.deepEqual(seen.reqBody, { a: [1, 2] });
      assert.equal(seen.bodyLength, 0);
    });

    it('should pass forward(req) as req.forwarded', async () => {
      const seen = await json(fetch(`${served.url}/`, { headers: { 'x-user': 'ann' } }));
      assert.deepEqual(seen.forwarded, { user: 'ann' });
    });

    it('should start from the headers set upstream', async () => {
      const res = await fetch(`${served.url}/`);
      assert.equal(res.headers.get('x-upstream'), 'from main');
      assert.equal((await json(res)).inheritedHeader, 'from main');
    });
  });

  describe('the response the client gets', () => {
    let served: Served;
    before(async () => {
      served = await serveChain(upstreamHeader, offload(fixture('response.mjs'), { pool }));
    });
    after(() => served.close());

    it('should keep status code and message', async () => {
      const res = await timedGet(`${served.url}/status`);
      assert.equal(res.status, 418);
      assert.equal(res.body, 'teapot');
      const raw = await rawRequest(served.port, 'GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 418 Short And Stout\r\n/);
    });

    it('should send every Set-Cookie', async () => {
      const res = await fetch(`${served.url}/cookies`);
      assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2', 'c=3']);
    });

    it('should accept writeHead with a raw header array and with an object', async () => {
      const raw = await rawRequest(served.port, 'GET /write-head-array HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 201 Created\r\n/);
      assert.match(raw, /\r\nX-Multi: one\r\nX-Multi: two\r\n/);
      const res = await fetch(`${served.url}/write-head-object`);
      assert.equal(res.status, 202);
      assert.equal(res.statusText, 'Fine');
      assert.equal(res.headers.get('x-before'), 'kept');
      assert.equal(res.headers.get('x-after'), 'set');
    });

    it('should send Content-Length for a body given to end(), chunked for writes', async () => {
      const length = await rawRequest(served.port, 'GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(length, /\r\nContent-Length: 7\r\n/i);
      assert.doesNotMatch(length, /Transfer-Encoding/i);
      const chunked = await rawRequest(served.port, 'GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(chunked, /\r\nTransfer-Encoding: chunked\r\n/i);
      assert.equal((await fetch(`${served.url}/chunked`).then((r) => r.text())), 'abc');
    });

    it('should start from the status set upstream, and leave Date out when the handler turns it off', async () => {
      const accepted = (_req: IncomingMessage, res: ServerResponse, next: () => void): void => {
        res.statusCode = 203;
        next();
      };
      const upstream = await serveChain(accepted, offload(fixture('response.mjs'), { pool }));
      try {
        const res = await fetch(`${upstream.url}/chunked`);
        assert.deepEqual([res.status, await res.text()], [203, 'abc']);
      } finally {
        await upstream.close();
      }
      const raw = await rawRequest(served.port, 'GET /no-date HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(raw, /\r\n\r\nundated$/);
      assert.doesNotMatch(raw, /\r\nDate:/i);
    });

    it('should send interim responses (102 Processing, 103 Early Hints) ahead of the final one', async () => {
      const raw = await rawRequest(served.port, 'GET /interim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const heads = raw.split('\r\n\r\n');
      assert.equal(heads[0], 'HTTP/1.1 102 Processing');
      assert.equal(heads[1], 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nx-hint: early');
      assert.match(heads[2]!, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(heads[3], 'final');
    });

    it('should send the trailers given to res.addTrailers() after the last chunk, and check them as node does', async () => {
      for (const [path, body, value] of [['/trailers', 'data', 'abc'], ['/trailers-in-one-end', 'whole', 'xyz']]) {
        const raw = await rawRequest(served.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.match(raw, /\r\nTransfer-Encoding: chunked\r\n/i);
        assert.ok(raw.endsWith(`\r\n0\r\nX-Checksum: ${value}\r\n\r\n`), raw);
        const chunks = raw.slice(raw.indexOf('\r\n\r\n') + 4);
        let text = '';
        for (let at = 0, size = -1; size !== 0; ) {
          const eol = chunks.indexOf('\r\n', at);
          size = parseInt(chunks.slice(at, eol), 16);
          text += chunks.slice(eol + 2, eol + 2 + size);
          at = eol + 4 + size;
        }
        assert.equal(text, body);
      }
      const bad = await fetch(`${served.url}/bad-trailer`);
      assert.equal(bad.status, 500);
      assert.equal((await json(bad)).code, 'ERR_INVALID_HTTP_TOKEN');
    });

    it('should answer HEAD without a body', async () => {
      for (const path of ['/length', '/chunked']) {
        const raw = await rawRequest(served.port, `HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
        assert.ok(raw.endsWith('\r\n\r\n'), 'no body after the head');
      }
    });

    it('should send 204 and 304 without a body', async () => {
      const noContent = await rawRequest(served.port, 'GET /no-content HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(noContent, /^HTTP\/1\.1 204 No Content\r\n/);
      assert.ok(noContent.endsWith('\r\n\r\n'));
      const notModified = await fetch(`${served.url}/not-modified`);
      assert.equal(notModified.status, 304);
      assert.equal(notModified.headers.get('etag'), '"x"');
    });

    it('should frame the body as Node does when the handler removes Content-Length, Transfer-Encoding or Connection', async () => {
      const { default: handler } = (await import(fixture('response.mjs').href)) as { default: (req: IncomingMessage, res: ServerResponse) => Promise<void> };
      const plain = await serve((req, res) => {
        res.setHeader('X-Upstream', 'from main');
        void handler(req, res);
      });
      try {
        const cases = ['Content-Length', 'Transfer-Encoding', 'Connection'].flatMap((name) => [`name=${name}`, `name=${name}&write`]);
        // Keep-alive requests: whether the server closes the connection is part of the framing.
        const send = (port: number, query: string) => sharedRawRequest(port, `GET /remove-framing?${query} HTTP/1.1\r\nHost: x\r\n\r\n`);
        const withoutDate = ({ text, closed }: { text: string; closed: boolean }) => ({ text: text.replace(/^Date: .*\r\n/im, ''), closed });
        const [offloaded, inline] = await Promise.all([served.port, plain.port].map((port) => Promise.all(cases.map((query) => send(port, query)))));
        for (const [i, query] of cases.entries()) assert.deepEqual(withoutDate(offloaded![i]!), withoutDate(inline![i]!), query);
        // And it is not Node's default framing.
        assert.match(offloaded![0]!.text, /transfer-encoding: chunked/i);
        assert.equal(offloaded![3]!.closed, true);
      } finally {
        await plain.close();
      }
    });

    it('should let the handler remove a header set upstream', async () => {
      const res = await fetch(`${served.url}/remove-header`);
      assert.equal(res.headers.get('x-upstream'), null);
      assert.equal(await res.text(), 'undefined');
    });

    it('should behave like node once headers are sent', async () => {
      assert.equal(await (await fetch(`${served.url}/headers-sent`)).text(), 'x ERR_HTTP_HEADERS_SENT true');
    });

    it('should send flushed headers before the handler finishes', async () => {
      const started = performance.now();
      const headersAt = await new Promise<number>((resolve, reject) => {
        const socket = connect(served.port, '127.0.0.1', () => socket.write('GET /flush-headers?spin=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
        let at = 0;
        socket.on('data', (data) => {
          if (!at && data.toString('latin1').includes('X-Early')) at = performance.now();
        });
        socket.on('end', () => resolve(at));
        socket.on('error', reject);
      });
      const done = performance.now();
      assert.ok(headersAt > 0);
      assert.ok(done - headersAt >= 150, `headers arrived ${Math.round(done - headersAt)} ms before the end`);
      assert.ok(headersAt - started < done - started);
    });

    it('should stream each write of a handler that never yields as it is written', async () => {
      const res = await timedGet(`${served.url}/spin-stream?spin=200`);
      assert.equal(res.body, 'first\nsecond\n');
      const first = res.chunks.find((c) => c.data.includes('first'))!;
      const second = res.chunks.find((c) => c.data.includes('second'))!;
      assert.ok(second.at - first.at >= 150, `chunk 1 arrived only ${Math.round(second.at - first.at)} ms before chunk 2`);
    });

    it('should stream through upstream middleware that wraps res.write and ignores its callback', async () => {
      // As compression does: the wrapped write never calls back, so credit
      // must come back some other way or a big response would stall.
      const wrapping = (_req: IncomingMessage, res: ServerResponse, next: () => void): void => {
        const write = res.write.bind(res) as (chunk: unknown, encoding?: BufferEncoding) => boolean;
        let seen = 0;
        res.write = ((chunk: Buffer | string, encoding?: BufferEncoding) => {
          seen += chunk.length;
          return write(chunk, encoding);
        }) as typeof res.write;
        res.on('finish', () => assert.ok(seen > 0));
        next();
      };
      const wrapped = await serveChain(wrapping, offload(fixture('response.mjs'), { pool, highWaterMark: '256kb' }));
      try {
        const res = await timedGet(`${wrapped.url}/big?mib=8`);
        assert.equal(res.status, 200);
        assert.equal(Buffer.byteLength(res.body), 8 * 1024 * 1024);
      } finally {
        await wrapped.close();
      }
    });

    it('should leave one drain listener on a wrapped response that hands them to a stream of its own', async () => {
      // As compression does: 'drain' listeners go to its own stream, which a
      // once() listener, removed from res, would never leave.
      const drains = new EventEmitter();
      const routing = (_req: IncomingMessage, res: ServerResponse, next: () => void): void => {
        const write = res.write.bind(res) as (chunk: unknown) => boolean;
        res.write = ((chunk: Buffer) => write(chunk)) as typeof res.write;
        const on = res.on.bind(res);
        on('drain', () => drains.emit('drain'));
        res.on = ((event: string, listener: () => void) => (event === 'drain' ? (drains.on(event, listener), res) : on(event, listener))) as typeof res.on;
        next();
      };
      let drained = 0;
      drains.on('drain', () => drained++);
      const wrapped = await serveChain(routing, offload(fixture('response.mjs'), { pool, highWaterMark: '256kb' }));
      try {
        const res = await timedGet(`${wrapped.url}/big?mib=8`);
        assert.equal(Buffer.byteLength(res.body), 8 * 1024 * 1024);
        assert.ok(drained > 1, `only ${drained} drains: nothing was tested`);
        // The counter's own, and the relay's one.
        assert.equal(drains.listenerCount('drain'), 2);
      } finally {
        await wrapped.close();
      }
    });

    it('should keep streamed responses apart while their clients still read them, each in a ring of its own', async () => {
      // More responses than threads, each larger than its window (the ring
      // wraps), to clients that start reading late: a thread runs the next
      // handler while the earlier responses still sit in their rings.
      const small = await serveChain(offload(fixture('response.mjs'), { pool, highWaterMark: '256kb' }));
      try {
        const bytes = [1, 2, 3, 4, 5, 6];
        const bodies = await Promise.all(bytes.map((byte) => lateRead(`${small.url}/big?mib=1&byte=${byte}`)));
        for (const [i, body] of bodies.entries()) {
          assert.equal(body.length, 1024 * 1024);
          assert.equal(body.findIndex((value) => value !== bytes[i]), -1, `response ${i} has bytes of another`);
        }
      } finally {
        await small.close();
      }
    });

    it('should run async handlers', async () => {
      assert.equal(await (await fetch(`${served.url}/async`)).text(), 'later');
    });
  });

  describe('modules', () => {
    it('should call init() once per thread before the first request', async () => {
      const single = createPool({ maxThreads: 1 });
      const served = await serve((req, res) => offload(fixture('init.mjs'), { pool: single })(req, res, () => {}));
      try {
        for (let i = 0; i < 3; i++) assert.deepEqual(await json(fetch(served.url)), { inits: 1 });
      } finally {
        await served.close();
        await single.close();
      }
    });

    it('should run fetch-style handlers: a function and an object with fetch()', async () => {
      const served = await serveChain(
        chain()
          .use('/fn', offload(fixture('fetch-function.mjs'), { pool, forward: () => 'ctx' }))
          .use('/obj', offload(fixture('fetch-object.mjs'), { pool })),
      );
      try {
        const res = await fetch(`${served.url}/fn/path?q=1`, { method: 'POST', body: 'payload', headers: { 'x-test': 'yes' } });
        assert.equal(res.status, 201);
        assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
        assert.deepEqual(await res.json(), { method: 'POST', path: '/path', search: '?q=1', body: 'payload', forwarded: 'ctx', ua: 'yes' });
        const streamed = await fetch(`${served.url}/obj/`);
        assert.equal(streamed.headers.get('x-kind'), 'fetch-object');
        assert.equal(await streamed.text(), 'part1;part2;part3;');
      } finally {
        await served.close();
      }
    });

    it('should detect the kind of a default export, and let kind override it', async () => {
      assert.equal(detectKind((_req: unknown, _res: unknown) => {}), 'node');
      assert.equal(detectKind(function app(_req: unknown, _res: unknown, _next: unknown) {}), 'node');
      assert.equal(detectKind((_request: unknown) => {}), 'fetch');
      assert.equal(detectKind({ fetch() {} }), 'fetch');
      assert.equal(detectKind({ callback() {}, use() {} }), 'koa');
      assert.equal(detectKind(42), undefined);
      const served = await serveChain(
        chain()
          .use('/forced', offload(fixture('fetch-two-params.mjs'), { pool, kind: 'fetch', forward: () => 'env' }))
          .use(offload(fixture('not-a-response.mjs'), { pool })),
      );
      try {
        assert.equal(await (await fetch(`${served.url}/forced`)).text(), 'forced GET env');
        const res = await fetch(served.url);
        assert.equal(res.status, 500);
        assert.equal((await json(res)).code, 'UNBLOCK_ERR_POOL_BAD_RESPONSE');
      } finally {
        await served.close();
      }
    });

    it('should fail requests with 500 and a code when the module cannot be used', async () => {
      const served = await serveChain(
        chain()
          .use('/not-a-handler', offload(fixture('not-a-handler.mjs'), { pool }))
          .use('/broken-init', offload(fixture('broken-init.mjs'), { pool })),
      );
      try {
        const bad = await fetch(`${served.url}/not-a-handler`);
        assert.equal(bad.status, 500);
        assert.equal((await json(bad)).code, 'UNBLOCK_ERR_POOL_BAD_HANDLER');
        const broken = await fetch(`${served.url}/broken-init`);
        assert.equal(broken.status, 500);
        assert.equal((await json(broken)).code, 'UNBLOCK_ERR_POOL_MODULE_LOAD');
      } finally {
        await served.close();
      }
    });
  });

  describe('inline: true', () => {
    it('should run the same module on the main thread through the same bridge', async () => {
      const served = await serveChain(
        chain(upstreamHeader)
          .use('/echo', offload(fixture('echo.mjs'), { inline: true }))
          .use(offload(fixture('response.mjs'), { inline: true })),
      );
      try {
        const seen = await json(fetch(`${served.url}/echo/x?y=1`, { method: 'POST', body: 'hi' }));
        assert.equal(seen.url, '/x?y=1');
        assert.equal(seen.body, 'hi');
        assert.deepEqual((await fetch(`${served.url}/cookies`)).headers.getSetCookie(), ['a=1', 'b=2', 'c=3']);
        assert.ok((await rawRequest(served.port, 'GET /trailers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).endsWith('\r\n0\r\nX-Checksum: abc\r\n\r\n'));
        const big = await fetch(`${served.url}/big?mib=8`);
        assert.equal((await big.arrayBuffer()).byteLength, 8 * 1024 * 1024);
      } finally {
        await served.close();
      }
    });
  });
});

/** Sends raw bytes, returns everything the server sent until it closed. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => (received += data));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}
