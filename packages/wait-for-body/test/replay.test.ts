import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import bodyParser from 'body-parser';
import { waitForBody, type RequestWithBody } from '../src/index.js';
import { eventually, post, serveChain } from './helpers.js';

type Next = (err?: unknown) => void;


/** Answers with `req.body` as JSON, as a body-parser left it. */
function parsed(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify((req as { body?: unknown }).body));
}

describe('waitForBody({ replay })', () => {
  describe('by default', () => {
    it('should let body-parser json() read the buffered body', async (t) => {
      const { url } = await serveChain(t, waitForBody(), bodyParser.json(), parsed);
      assert.deepEqual(await (await post(url, '{"a":[1,2]}', { 'content-type': 'application/json' })).json(), { a: [1, 2] });
    });

    it('should let body-parser urlencoded() and text() read it', async (t) => {
      const form = await serveChain(t, waitForBody(), bodyParser.urlencoded(), parsed);
      assert.deepEqual(await (await post(form.url, 'a=1&b=two', { 'content-type': 'application/x-www-form-urlencoded' })).json(), { a: '1', b: 'two' });
      const text = await serveChain(t, waitForBody(), bodyParser.text(), parsed);
      assert.equal(await (await post(text.url, 'plain words', { 'content-type': 'text/plain' })).json(), 'plain words');
    });

    it('should give body-parser the decompressed body, with headers that say so', async (t) => {
      let headers: IncomingMessage['headers'] = {};
      const { url } = await serveChain(
        t,
        waitForBody(),
        (req: IncomingMessage, _res: ServerResponse, next: Next) => {
          headers = { ...req.headers };
          next();
        },
        bodyParser.json(),
        parsed,
      );
      const json = JSON.stringify({ list: Array.from({ length: 200 }, (_, i) => i) });
      const res = await post(url, gzipSync(json), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      assert.deepEqual(await res.json(), JSON.parse(json));
      assert.equal(headers['content-encoding'], undefined);
      assert.equal(headers['content-length'], String(json.length));
    });

    it('should let body-parser enforce its own, smaller limit on the replay', async (t) => {
      const { url, errors } = await serveChain(t, waitForBody({ limit: '1mb' }), bodyParser.json({ limit: 10 }), parsed);
      const res = await post(url, JSON.stringify({ long: 'x'.repeat(100) }), { 'content-type': 'application/json' });
      assert.equal(res.status, 413);
      assert.equal((errors[0] as { type: string }).type, 'entity.too.large');
    });

    it('should be readable with for await, twice in a row through two readers', async (t) => {
      const { url } = await serveChain(t, waitForBody(), async (req: IncomingMessage, res: ServerResponse) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        res.end(`${Buffer.concat(chunks).toString()}|${(req as RequestWithBody).body.toString()}`);
      });
      const body = 'y'.repeat(100_000);
      assert.equal(await (await post(url, body)).text(), `${body}|${body}`);
    });

    it('should be readable with data/end events and with pipe()', async (t) => {
      const { url } = await serveChain(
        t,
        waitForBody(),
        (req: IncomingMessage, _res: ServerResponse, next: Next) => {
          let text = '';
          req.on('data', (chunk: Buffer) => (text += chunk.toString()));
          req.on('end', () => {
            (req as { fromEvents?: string }).fromEvents = text;
            next();
          });
        },
        async (req: IncomingMessage, res: ServerResponse) => {
          // Events consumed the replay: a second replay is not made, so pipe sees an ended stream.
          const out = new PassThrough();
          const chunks: Buffer[] = [];
          out.on('data', (chunk: Buffer) => chunks.push(chunk));
          await pipeline(req, out);
          res.end(`${(req as { fromEvents?: string }).fromEvents}|${Buffer.concat(chunks).length}`);
        },
      );
      assert.equal(await (await post(url, 'evented')).text(), 'evented|0');
    });

    it('should replay an empty body as an empty stream that ends', async (t) => {
      const { url } = await serveChain(t, waitForBody(), async (req: IncomingMessage, res: ServerResponse) => {
        let count = 0;
        for await (const chunk of req) count += (chunk as Buffer).length;
        res.end(String(count));
      });
      assert.equal(await (await post(url, '')).text(), '0');
    });

    it("should emit the request's 'close' event once", async (t) => {
      let closes = 0;
      let ended: () => void;
      const done = new Promise<void>((resolve) => (ended = resolve));
      const { url } = await serveChain(
        t,
        (req: IncomingMessage, _res: ServerResponse, next: Next) => {
          req.on('close', () => closes++);
          next();
        },
        waitForBody(),
        async (req: IncomingMessage, res: ServerResponse) => {
          for await (const _ of req);
          res.end('ok');
          res.once('close', () => setTimeout(ended, 20));
        },
      );
      assert.equal(await (await post(url, 'x')).text(), 'ok');
      await done;
      assert.equal(closes, 1);
    });

    it('should dump a replay nobody read once the response has finished, as Node dumps an unread body', async (t) => {
      let request: IncomingMessage | undefined;
      const { url } = await serveChain(t, waitForBody(), (req: IncomingMessage, res: ServerResponse) => {
        request = req;
        assert.equal(req.readableEnded, false);
        res.end('answered');
      });
      // Kept alive: until the request stream ends, the connection keeps the request and its body.
      assert.equal(await (await post(url, 'unread')).text(), 'answered');
      await eventually(() => request!.readableEnded, 'the replay to be dumped');
      assert.equal((request as RequestWithBody).body.toString(), 'unread');
    });

    it('should leave a replay alone that a reader has started on', async (t) => {
      let read: Promise<string> | undefined;
      const { url } = await serveChain(t, waitForBody(), (req: IncomingMessage, res: ServerResponse) => {
        req.pause();
        res.end('answered first');
        read = new Promise((resolve) =>
          setTimeout(async () => {
            let text = '';
            for await (const chunk of req) text += (chunk as Buffer).toString();
            resolve(text);
          }, 30),
        );
      });
      assert.equal(await (await post(url, 'read later')).text(), 'answered first');
      assert.equal(await read, 'read later');
    });

    it('should keep a kept-alive connection working across replayed requests', async (t) => {
      const { url } = await serveChain(t, waitForBody(), bodyParser.text({ type: '*/*' }), parsed);
      for (let i = 0; i < 5; i++) {
        assert.equal(await (await post(url, `n${i}`)).json(), `n${i}`);
      }
    });
  });

  describe('with replay: false', () => {
    it('should leave the stream ended: body-parser 2 then sees a finished request and leaves req.body the Buffer', async (t) => {
      const { url } = await serveChain(t, waitForBody({ replay: false }), bodyParser.json(), parsed);
      const res = await post(url, '{}', { 'content-type': 'application/json' });
      assert.deepEqual(await res.json(), { type: 'Buffer', data: [0x7b, 0x7d] });
    });
  });
});
