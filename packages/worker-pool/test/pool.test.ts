import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { after, describe, it } from 'node:test';
import { chain } from '@unblock/chain';
import { createPool, offload, optionsSchema, poolOptionsSchema } from '../src/index.js';
import { RequestTable } from '../src/pool.js';
import { SLOTS_BYTES, endsResponse, leaveResult, takeResult } from '../src/protocol.js';
import { eventually } from '../../../test/support/http.js';
import { fixture, serveChain } from './helpers.js';

const invalid = { name: 'TypeError', code: 'UNBLOCK_ERR_POOL_INVALID_OPTION' };

describe('createPool(options)', () => {
  it('should reject bad options with a TypeError and a code', () => {
    for (const options of [
      { maxThreads: 0 },
      { maxThreads: 1.5 },
      { minThreads: 3, maxThreads: 2 },
      { maxQueue: -1 },
      { idleTimeout: 'soon' },
      { retryAfter: -5 },
      { resourceLimits: { maxOldGenerationSizeMb: 0 } },
      { resourceLimits: { heap: 10 } },
      { nice: -1 },
      { nice: 20 },
      { nice: 2.5 },
      { maxThread: 2 },
    ]) {
      assert.throws(() => createPool(options as never), invalid, JSON.stringify(options));
    }
    assert.throws(() => createPool('4' as never), invalid);
  });

  it('should report stats: threads, queue, utilization and histograms of queue wait and run time', async () => {
    const pool = createPool({ maxThreads: 1, maxQueue: 10 });
    const served = await serveChain(offload(fixture('slow.mjs'), { pool, serverTiming: true }));
    try {
      const empty = pool.stats();
      assert.equal(empty.maxThreads, 1);
      assert.equal(empty.maxQueue, 10);
      assert.equal(empty.queueWait.count, 0);
      const responses = await Promise.all([1, 2, 3].map((id) => fetch(`${served.url}/?ms=30&id=${id}`)));
      for (const res of responses) {
        assert.equal(res.status, 200);
        assert.match(res.headers.get('server-timing') ?? '', /^queue;dur=\d+(\.\d+)?$/);
      }
      // A response leaves at its end(); its task is counted once the handler returned, just after.
      await eventually(() => pool.stats().completed === 3, 'three tasks completed');
      const stats = pool.stats();
      assert.equal(stats.threads, 1);
      assert.equal(stats.pending, 0);
      assert.equal(stats.queueSize, 0);
      assert.equal(stats.completed, 3);
      assert.equal(stats.queueWait.count, 3);
      assert.equal(stats.runTime.count, 3);
      assert.ok(stats.runTime.min >= 25, `runTime.min ${stats.runTime.min}`);
      // The third request waited for the two before it.
      assert.ok(stats.queueWait.max >= 50, `queueWait.max ${stats.queueWait.max}`);
      assert.ok(stats.runTime.p99 >= stats.runTime.p50);
      assert.ok(stats.utilization > 0 && stats.utilization <= 1);
    } finally {
      await served.close();
      await pool.close();
    }
  });

  it('should count each task once, whether its end was left beside the request or posted after it', async () => {
    const pool = createPool({ maxThreads: 1 });
    const served = await serveChain(offload(fixture('after-end.mjs'), { pool }));
    try {
      // /unread is over at its end(): the main thread finds its end beside
      // the request. /spin runs on after end(): its end is posted.
      const paths = Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? `/spin?ms=30&id=${i}` : `/unread?id=${i}`));
      const responses = await Promise.all(paths.map((path) => fetch(`${served.url}${path}`).then((res) => res.text())));
      assert.equal(responses.filter((text) => text === 'sent').length, 10);
      assert.equal(responses.filter((text) => text === 'not read').length, 30);
      await eventually(() => pool.stats().pending === 0, 'every task over');
      const stats = pool.stats();
      assert.equal(stats.completed, 40);
      assert.equal(stats.runTime.count, 40);
      assert.equal(stats.queueWait.count, 40);
      assert.ok(stats.runTime.max >= 30, `runTime.max ${stats.runTime.max}: the spinning tasks' ends were read`);
      assert.ok(stats.runTime.min >= 0 && stats.queueWait.min >= 0);
    } finally {
      await served.close();
      await pool.close();
    }
  });

  it('should let many modules share one pool', async () => {
    const pool = createPool({ maxThreads: 1 });
    const served = await serveChain(chain().use('/echo', offload(fixture('echo.mjs'), { pool })).use(offload(fixture('slow.mjs'), { pool })));
    try {
      assert.equal((await fetch(`${served.url}/echo`)).status, 200);
      assert.equal(await (await fetch(`${served.url}/?id=s`)).text(), 'done s');
    } finally {
      await served.close();
      await pool.close();
    }
  });
});

describe('the worker threads\' priority', { skip: process.platform === 'linux' ? false : 'Linux only: elsewhere threads keep the main thread\'s priority' }, () => {
  const niceOf = async (options: { nice?: number }): Promise<number> => {
    const pool = createPool({ maxThreads: 1, ...options });
    const served = await serveChain(offload(fixture('priority.mjs'), { pool }));
    try {
      const body = (await (await fetch(served.url)).json()) as { nice: number };
      return body.nice;
    } finally {
      await served.close();
      await pool.close();
    }
  };
  const mainNice = getPriority(0);

  it('should run the worker threads 6 nice levels below the main thread by default, so the event loop gets a core first', async () => {
    assert.equal(await niceOf({}), Math.min(19, mainNice + 6));
  });

  it('should run them as told, level with the main thread at nice: 0, at most at nice 19', async () => {
    assert.equal(await niceOf({ nice: 0 }), mainNice);
    assert.equal(await niceOf({ nice: 2 }), Math.min(19, mainNice + 2));
    assert.equal(await niceOf({ nice: 19 }), 19);
    // The main thread itself is left as it was.
    assert.equal(getPriority(0), mainNice);
  });
});

describe('the end of a task left beside its request', () => {
  const result = { queueWait: 0.25, runTime: 1.5, loading: 0.125 };
  const slots = () => new Int32Array(new SharedArrayBuffer(SLOTS_BYTES));

  it('should be read by the main thread when the task was over before it read the response\'s last message', () => {
    const shared = slots();
    // The worker's thread: nothing to post, the main thread will find it.
    assert.equal(leaveResult(shared.buffer as SharedArrayBuffer, result), true);
    assert.deepEqual(takeResult(shared), result);
  });

  it('should be posted by the worker\'s thread when the main thread read the response\'s last message first', () => {
    const shared = slots();
    assert.equal(takeResult(shared), undefined);
    // The main thread will not look again: the end must be posted.
    assert.equal(leaveResult(shared.buffer as SharedArrayBuffer, result), false);
  });

  it('should tell which messages end a response on the main thread', () => {
    assert.equal(endsResponse({ id: 1, type: 'data', size: 2, end: true }), true);
    assert.equal(endsResponse({ id: 1, type: 'data', size: 2, end: false }), false);
    assert.equal(endsResponse({ id: 1, type: 'error', error: { status: 500, expose: false, message: 'x', name: 'Error' }, headSent: false }), true);
    assert.equal(endsResponse({ id: 1, type: 'destroy' }), true);
    for (const type of ['pull', 'discard', 'interim'] as const) assert.equal(endsResponse({ id: 1, type, bytes: 1, status: 103 } as never), false, type);
  });
});

describe('the table of accepted requests', () => {
  it('should give each request its own id, and a forgotten id nothing once its slot is reused', () => {
    const table = new RequestTable<string>();
    const first = table.add('first');
    const second = table.add('second');
    assert.notEqual(first, second);
    assert.equal(table.get(first), 'first');
    table.delete(first);
    assert.equal(table.get(first), undefined);
    const third = table.add('third');
    const seen = new Set([first, second, third]);
    assert.equal(seen.size, 3, 'a reused slot gets a new id');
    // A late message of the forgotten request, and a second forget(), touch nothing of the new one.
    assert.equal(table.get(first), undefined);
    table.delete(first);
    assert.equal(table.get(third), 'third');
    assert.equal(table.get(second), 'second');
    for (let i = 0; i < 1000; i++) {
      const id = table.add(`n${i}`);
      assert.ok(!seen.has(id), `id ${id} given twice`);
      seen.add(id);
      table.delete(id);
    }
    assert.equal(table.get(third), 'third');
  });
});

describe('offload(module, options) options', () => {
  const pool = createPool({ maxThreads: 1, minThreads: 0 });

  it('should reject a module that is not a file URL or an absolute path, or does not exist', () => {
    assert.throws(() => offload('./relative.js', { pool }), invalid);
    assert.throws(() => offload('some-package', { pool }), invalid);
    assert.throws(() => offload(new URL('https://example.com/handler.js'), { pool }), invalid);
    assert.throws(() => offload(fixture('no-such-file.mjs'), { pool }), invalid);
    assert.doesNotThrow(() => offload(fixture('echo.mjs').href, { pool }));
    assert.doesNotThrow(() => offload(fixture('echo.mjs').pathname, { pool }));
  });

  it('should reject bad options with a TypeError and a code', () => {
    for (const options of [
      {},
      { pool: {} },
      { pool, timeout: 'never' },
      // Past what Node's timers can wait: such a deadline would pass at once.
      { pool, timeout: '30d' },
      { pool, abortGrace: 2 ** 31 },
      { pool, kind: 'express' },
      { pool, abortGrace: -1 },
      { pool, highWaterMark: 0 },
      { pool, highWaterMark: 'lots' },
      { pool, serverTiming: 'yes' },
      { pool, forward: 'user' },
      { pool, inline: 1 },
      { pool, timeOut: 5 },
    ]) {
      assert.throws(() => offload(fixture('echo.mjs'), options as never), invalid, JSON.stringify(Object.keys(options)));
    }
  });

  it('should accept durations and sizes as numbers or strings', () => {
    assert.doesNotThrow(() => offload(fixture('echo.mjs'), { pool, timeout: '5s', abortGrace: 250, highWaterMark: '256kb' }));
    assert.doesNotThrow(() => offload(fixture('echo.mjs'), { inline: true, timeout: 0 }));
    assert.doesNotThrow(() => offload(fixture('echo.mjs'), { pool, timeout: ' 5s ' }));
  });

  it('should export JSON Schemas that forbid unknown options', () => {
    for (const schema of [optionsSchema, poolOptionsSchema]) {
      assert.equal(schema.type, 'object');
      assert.equal(schema.additionalProperties, false);
    }
    assert.deepEqual(Object.keys(optionsSchema.properties).sort(), ['abortGrace', 'highWaterMark', 'inline', 'kind', 'serverTiming', 'timeout']);
    assert.deepEqual(Object.keys(poolOptionsSchema.properties).sort(), ['idleTimeout', 'maxQueue', 'maxThreads', 'minThreads', 'nice', 'resourceLimits', 'retryAfter']);
  });

  after(() => pool.close());
});
