import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chain } from '@unblock/chain';
import { createPool, offload, type Pool } from '../src/index.js';
import { fixture, serveChain, type Served } from './helpers.js';

const MIB = 1024 * 1024;
// Big enough that buffering would show, small enough to run in seconds.
const SIZE_MIB = 256;
const BOUND_MIB = 64;

/** Runs the client fixture in its own process while sampling this process's RSS (main thread and workers). */
async function measure(args: string[]): Promise<{ output: string; growthMiB: number }> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(fixture('client.mjs')), ...args]);
    return { output: stdout.trim(), growthMiB: (Math.max(peak, process.memoryUsage.rss()) - baseline) / MIB };
  } finally {
    clearInterval(sampler);
  }
}

describe('offload() memory with big bodies', () => {
  let pool: Pool;
  let served: Served;
  before(async () => {
    pool = createPool({ maxThreads: 1 });
    served = await serveChain(chain().use('/upload', offload(fixture('upload.mjs'), { pool })).use(offload(fixture('response.mjs'), { pool })));
    // Start the thread and load both modules first: their memory is not the body's.
    await (await fetch(`${served.url}/length`)).text();
    await (await fetch(`${served.url}/upload`, { method: 'POST', body: 'x' })).text();
  });
  after(async () => {
    await served.close();
    await pool.close();
  });

  it(`should send a ${SIZE_MIB} MiB response written by a handler that never yields, in bounded memory`, async () => {
    const { output, growthMiB } = await measure(['get', `${served.url}/big?mib=${SIZE_MIB}`]);
    assert.equal(Number(output), SIZE_MIB * MIB);
    assert.ok(growthMiB < BOUND_MIB, `RSS grew ${growthMiB.toFixed(1)} MiB`);
  });

  it('should hold a handler that never yields to the pace of a slow client, in bounded memory', async () => {
    const started = performance.now();
    const { output, growthMiB } = await measure(['slow-get', `${served.url}/big?mib=128`]);
    assert.equal(Number(output), 128 * MIB);
    assert.ok(growthMiB < BOUND_MIB, `RSS grew ${growthMiB.toFixed(1)} MiB`);
    // 512 pauses of 5 ms: the client, not the handler, set the pace.
    assert.ok(performance.now() - started >= 2500);
  });

  it(`should stream a ${SIZE_MIB} MiB upload into the handler, in bounded memory on both threads`, async () => {
    const { output, growthMiB } = await measure(['post', `${served.url}/upload`, String(SIZE_MIB)]);
    const report = JSON.parse(output) as { bytes: number; growth: number; complete: boolean };
    assert.equal(report.bytes, SIZE_MIB * MIB);
    assert.equal(report.complete, true);
    assert.ok(report.growth / MIB < BOUND_MIB, `the worker's heap and buffers grew ${(report.growth / MIB).toFixed(1)} MiB`);
    assert.ok(growthMiB < BOUND_MIB, `RSS grew ${growthMiB.toFixed(1)} MiB`);
  });
});
