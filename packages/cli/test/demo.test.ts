// The demo behind `npm start` (examples/demo/unblock.config.yaml), served by
// the real command on a free port: every route it advertises answers.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fetch } from 'undici';
import { listening, run } from './helpers.js';

const demo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'demo');

describe('examples/demo/unblock.config.yaml', { timeout: 60_000 }, () => {
  it('should serve the fast, offloaded, streaming and Express routes, and health', async () => {
    const r = run(['serve', 'unblock.config.yaml'], demo, { PORT: '0' });
    try {
      const url = await listening(r);
      assert.match(await (await fetch(`${url}/fast`)).text(), /^fast: /);

      const blocking = await fetch(`${url}/blocking`);
      assert.match(await blocking.text(), /on worker thread [1-9]\d*\n$/);
      assert.match(blocking.headers.get('server-timing') ?? '', /queue;dur=/);

      // The first line arrives while the handler is still computing the others (~100 ms each).
      const started = performance.now();
      const stream = await fetch(`${url}/stream?lines=8`);
      const reader = stream.body!.getReader();
      const first = await reader.read();
      const firstAt = performance.now() - started;
      let text = Buffer.from(first.value!).toString();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += Buffer.from(chunk.value).toString();
      const totalAt = performance.now() - started;
      assert.match(text, /^line 1\/8: /);
      assert.match(text, /line 8\/8: [0-9a-f]{16}\ndone\n$/);
      assert.ok(totalAt - firstAt > 300, `first line at ${firstAt.toFixed(0)} ms, end at ${totalAt.toFixed(0)} ms`);

      assert.deepEqual(await (await fetch(`${url}/legacy/hello?name=ada`)).json(), { hello: 'ada', from: 'express', mountedAt: '/legacy' });
      const echo = await fetch(`${url}/legacy/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      assert.deepEqual(await echo.json(), { received: { a: 1 } });
      const tooBig = await fetch(`${url}/legacy/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(200_000) }) });
      assert.equal(tooBig.status, 413);

      const health = (await (await fetch(`${url}/health`)).json()) as { status: string; pools: { default: { maxThreads: number } } };
      assert.equal(health.status, 'ok');
      assert.equal(health.pools.default.maxThreads, 2);
      assert.equal((await fetch(`${url}/nowhere`)).status, 404);
    } finally {
      r.child.kill('SIGTERM');
      assert.equal(await r.exited(), 0);
    }
  });
});
