import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toKoa } from '@unblock/koa';
import bodyParser from 'body-parser';
import { waitForBody } from '../src/index.js';
import { koaErrors, koaVersions } from '../../../test/support/frameworks.js';
import { serve } from '../../../test/support/http.js';
import { RawClient, codes, post, request } from './helpers.js';

for (const [name, Koa] of koaVersions) {
  describe(`waitForBody() in ${name} through toKoa()`, () => {
    it('should put the body in ctx.request.body before downstream runs', async (t) => {
      const app = new Koa();
      app.use(toKoa(waitForBody()));
      app.use((ctx) => {
        const body = (ctx.request as { body?: unknown }).body as Buffer;
        ctx.body = { isBuffer: Buffer.isBuffer(body), text: body.toString() };
      });
      const { url } = await serve(t, app.callback());
      assert.deepEqual(await (await post(url, 'from koa')).json(), { isBuffer: true, text: 'from koa' });
    });

    it("should answer 413 through Koa's error flow, with the error emitted as exposed", async (t) => {
      const app = new Koa();
      const errors = koaErrors(app);
      app.use(toKoa(waitForBody({ limit: 3 })));
      app.use((ctx) => (ctx.body = 'unreached'));
      const { url } = await serve(t, app.callback());
      const res = await post(url, 'four');
      assert.equal(res.status, 413);
      assert.equal(await res.text(), 'request body is larger than the limit of 3 bytes');
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_TOO_LARGE']);
    });

    it('should end the connection with the 408 to a stalled upload, though Koa removes the Connection header', async (t) => {
      const app = new Koa();
      const errors = koaErrors(app);
      app.use(toKoa(waitForBody({ timeout: 500 })));
      app.use((ctx) => (ctx.body = 'unreached'));
      const { port } = await serve(t, app.callback());
      const client = await RawClient.open(t, port);
      await client.write(request('POST', '/', { 'content-length': 100 }, 'abc'));
      const [res] = await client.responses(1);
      assert.equal(res!.status, 408);
      const answered = Date.now();
      await client.closed;
      // Not left to the guard that destroys the connection `timeout` after the error.
      assert.ok(Date.now() - answered < 250, `closed ${Date.now() - answered} ms after the response`);
      assert.deepEqual(codes(errors), ['UNBLOCK_ERR_BODY_TIMEOUT']);
    });

    it('should let a Connect-style body-parser after it read the replay', async (t) => {
      const app = new Koa();
      app.use(toKoa(waitForBody()));
      app.use(toKoa(bodyParser.json()));
      app.use((ctx) => (ctx.body = (ctx.request as { body?: unknown }).body));
      const { url } = await serve(t, app.callback());
      assert.deepEqual(await (await post(url, '{"k":"v"}', { 'content-type': 'application/json' })).json(), { k: 'v' });
    });
  });
}
