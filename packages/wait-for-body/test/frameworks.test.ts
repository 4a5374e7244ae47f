import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { RequestHandler } from 'express';
import multer from 'multer';
import { waitForBody } from '../src/index.js';
import { expressErrorRecorder, expressVersions, expressWith, levels, type ConnectMiddleware } from '../../../test/support/frameworks.js';
import { serve } from '../../../test/support/http.js';
import { codes, post } from './helpers.js';


const sendBody: RequestHandler = (req, res) => {
  res.json({ isBuffer: Buffer.isBuffer(req.body), text: Buffer.isBuffer(req.body) ? req.body.toString() : req.body });
};

for (const [name, express] of expressVersions) {
  describe(`waitForBody() in ${name}`, () => {
    for (const level of levels) {
      describe(`at ${level} level`, () => {
        it('should hand the handler the whole body as a Buffer', async (t) => {
          const { app, path } = expressWith(express, level, waitForBody(), sendBody);
          const { url } = await serve(t, app);
          assert.deepEqual(await (await post(`${url}${path}`, 'hello express')).json(), { isBuffer: true, text: 'hello express' });
        });

        it('should pass 413 to the error handler with its code', async (t) => {
          const recorder = expressErrorRecorder();
          const { app, path } = expressWith(express, level, waitForBody({ limit: 5 }), sendBody, recorder.handler);
          const { url } = await serve(t, app);
          const res = await post(`${url}${path}`, 'too long');
          assert.equal(res.status, 413);
          assert.equal(await res.text(), 'caught 413 UNBLOCK_ERR_BODY_TOO_LARGE');
          assert.deepEqual(codes(recorder.seen), ['UNBLOCK_ERR_BODY_TOO_LARGE']);
        });

        it("should come before the framework's body-parser, which reads the replay", async (t) => {
          const { app, path } = expressWith(express, level, [waitForBody(), express.json(), express.urlencoded({ extended: false })], (req, res) => res.json(req.body));
          const { url } = await serve(t, app);
          assert.deepEqual(await (await post(`${url}${path}`, '{"n":1}', { 'content-type': 'application/json' })).json(), { n: 1 });
          assert.deepEqual(await (await post(`${url}${path}`, gzipSync('n=2'), { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' })).json(), { n: '2' });
        });
      });
    }

    it('should leave what express.json() parsed at app level, and read what it did not parse', async (t) => {
      const app = express();
      app.use(express.json());
      app.post('/route', waitForBody(), sendBody);
      const { url } = await serve(t, app);
      assert.deepEqual(await (await post(`${url}/route`, '{"parsed":true}', { 'content-type': 'application/json' })).json(), { isBuffer: false, text: { parsed: true } });
      assert.deepEqual(await (await post(`${url}/route`, 'raw text', { 'content-type': 'text/plain' })).json(), { isBuffer: true, text: 'raw text' });
    });

    it("should let Express's own final handler answer 413 once the upload is drained", async (t) => {
      const { app, path } = expressWith(express, 'app', waitForBody({ limit: 100 }), sendBody);
      // Its final handler logs every error outside the test environment.
      app.set('env', 'test');
      const { url } = await serve(t, app);
      const res = await post(`${url}${path}`, 'x'.repeat(200_000));
      assert.equal(res.status, 413);
      assert.match(await res.text(), /request body is larger than the limit of 100 bytes/);
    });

    it("should let Express's own final handler answer 408 to a stalled upload at once", async (t) => {
      const { app, path } = expressWith(express, 'app', waitForBody({ timeout: 100 }), sendBody);
      app.set('env', 'test');
      const { url } = await serve(t, app);
      const stalled = stalledBody();
      const res = await fetch(`${url}${path}`, { method: 'POST', body: stalled, duplex: 'half' } as RequestInit);
      assert.equal(res.status, 408);
      assert.equal(res.headers.get('connection'), 'close');
      await stalled.cancel().catch(() => {});
    });

    it('should answer 408 through the error handler for a stalled upload', async (t) => {
      const recorder = expressErrorRecorder();
      const { app, path } = expressWith(express, 'route', waitForBody({ timeout: 100 }), sendBody, recorder.handler);
      const { url } = await serve(t, app);
      const stalled = stalledBody();
      const res = await fetch(`${url}${path}`, { method: 'POST', body: stalled, duplex: 'half' } as RequestInit);
      assert.equal(res.status, 408);
      assert.deepEqual(codes(recorder.seen), ['UNBLOCK_ERR_BODY_TIMEOUT']);
      await stalled.cancel().catch(() => {});
    });
  });
}

describe('waitForBody() before multer', () => {
  it('should let multer parse a multipart upload from the replay', async (t) => {
    const [, express5] = expressVersions[1];
    const upload = multer({ storage: multer.memoryStorage() });
    const { app, path } = expressWith(express5, 'route', [waitForBody({ limit: '1mb' }), upload.single('file') as unknown as ConnectMiddleware], (req, res) => {
      res.json({ field: req.body.note, name: req.file?.originalname, size: req.file?.size, head: req.file?.buffer.subarray(0, 4).toString('hex') });
    });
    const { url } = await serve(t, app);
    const form = new FormData();
    form.append('note', 'hello');
    form.append('file', new Blob([Buffer.from([0xde, 0xad, 0xbe, 0xef, ...Buffer.alloc(200_000)])]), 'blob.bin');
    const res = await fetch(`${url}${path}`, { method: 'POST', body: form });
    assert.deepEqual(await res.json(), { field: 'hello', name: 'blob.bin', size: 200_004, head: 'deadbeef' });
  });
});

describe('waitForBody({ replay: false }) before Express 4 body-parser (1.x)', () => {
  it('should make body-parser fail with its stream.not.readable error instead of hanging', async (t) => {
    const [, express4] = expressVersions[0];
    const recorder = expressErrorRecorder();
    const { app, path } = expressWith(express4, 'app', [waitForBody({ replay: false }), express4.json()], sendBody, recorder.handler);
    const { url } = await serve(t, app);
    const res = await post(`${url}${path}`, '{}', { 'content-type': 'application/json' });
    assert.equal(res.status, 500);
    assert.equal((recorder.seen[0] as { type: string }).type, 'stream.not.readable');
  });
});

/** A request body that sends its first part, then nothing more. */
function stalledBody(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('first part'));
    },
  });
}
