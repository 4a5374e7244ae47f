import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:net';
import { chain } from '@unblock/chain';
import { WORKER_ERROR_WARNING_CODE, createPool, offload, type Pool, type PoolOptions } from '../src/index.js';
import { collectReports, delay, fixture, json, serveChain, timedGet, waitForReport, type Served } from './helpers.js';
import { eventually } from '../../../test/support/http.js';

/** Until `pool` holds `count` requests, running or waiting: later ones then arrive after them, however busy the machine. */
const untilPending = (pool: Pool, count: number): Promise<void> => eventually(() => pool.stats().pending >= count, `${count} requests with the pool`);

describe('offload() when things go wrong', () => {
  describe('when the handler throws', () => {
    let pool: Pool;
    let served: Served;
    before(async () => {
      pool = createPool({ maxThreads: 1 });
      served = await serveChain(offload(fixture('fail.mjs'), { pool }));
    });
    after(async () => {
      await served.close();
      await pool.close();
    });

    it('should pass an http-error to next() with its status, code, expose, message and headers', async () => {
      const res = await fetch(`${served.url}/http-error`);
      assert.equal(res.status, 404);
      assert.deepEqual(await json(res), { code: 'REPORT_MISSING', status: 404, expose: true, message: 'no such report' });
      const unauthorized = await fetch(`${served.url}/unauthorized`);
      assert.equal(unauthorized.status, 401);
      assert.equal(unauthorized.headers.get('www-authenticate'), 'Basic');
    });

    it('should pass a plain Error as an unexposed 500, and a thrown non-Error too', async () => {
      const body = await json(fetch(`${served.url}/plain-error`));
      assert.equal(body.status, 500);
      assert.equal(body.expose, false);
      assert.equal(body.message, 'secret internals');
      assert.equal((await json(fetch(`${served.url}/throw-string`))).status, 500);
    });

    it('should pass a rejection to next()', async () => {
      assert.equal((await fetch(`${served.url}/reject`)).status, 422);
    });

    it('should still pass the error to next() when writeHead was called but nothing was written', async () => {
      const res = await fetch(`${served.url}/after-head-set`);
      assert.equal(res.status, 409);
      assert.equal((await json(res)).message, 'changed my mind');
    });

    it('should destroy the response when the error comes after headers', async () => {
      for (const path of ['/after-headers', '/destroy']) {
        // Headers and the first chunk arrive, then the connection ends without the last chunk.
        const raw = await rawGet(served.port, path);
        assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
        assert.match(raw, /partial\r\n$/);
      }
      assert.equal(await (await fetch(`${served.url}/ok`)).text(), 'fine');
    });
  });

  describe('when a worker crashes', () => {
    let pool: Pool;
    let served: Served;
    before(async () => {
      pool = createPool({ maxThreads: 2, minThreads: 2 });
      served = await serveChain(chain().use('/slow', offload(fixture('slow.mjs'), { pool })).use(offload(fixture('fail.mjs'), { pool })));
    });
    after(async () => {
      await served.close();
      await pool.close();
    });

    for (const path of ['/exit-before', '/uncaught']) {
      it(`should fail only that request with 500 (${path}) and keep serving`, async () => {
        const beside = fetch(`${served.url}/slow?ms=300&id=beside`);
        await delay(50);
        const res = await fetch(`${served.url}${path}`);
        assert.equal(res.status, 500);
        assert.equal((await json(res)).code, 'UNBLOCK_ERR_POOL_WORKER_CRASHED');
        assert.equal(await (await beside).text(), 'done beside');
        assert.equal(await (await fetch(`${served.url}/ok`)).text(), 'fine');
      });
    }

    it('should run a request waiting behind the crashed one on the replacement thread', async () => {
      const single = createPool({ maxThreads: 1 });
      const small = await serveChain(offload(fixture('fail.mjs'), { pool: single }));
      try {
        const crashing = fetch(`${small.url}/exit-later`);
        await delay(30);
        // Waits for the only thread, behind the request that kills it.
        const waiting = fetch(`${small.url}/ok`);
        assert.equal((await crashing).status, 500);
        assert.equal(await (await waiting).text(), 'fine');
      } finally {
        await small.close();
        await single.close();
      }
    });

    it('should destroy a response already started when its worker exits', async () => {
      const raw = await rawGet(served.port, '/exit');
      assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(raw, /about to exit\r\n$/);
      assert.equal(await (await fetch(`${served.url}/ok`)).text(), 'fine');
    });

    it('should fail a request whose worker runs out of memory under resourceLimits', async () => {
      const limited = createPool({ maxThreads: 1, resourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 } });
      const small = await serveChain(offload(fixture('fail.mjs'), { pool: limited }));
      try {
        const res = await fetch(`${small.url}/oom`);
        assert.equal(res.status, 500);
        assert.equal((await json(res)).code, 'UNBLOCK_ERR_POOL_WORKER_CRASHED');
        assert.equal(await (await fetch(`${small.url}/ok`)).text(), 'fine');
      } finally {
        await small.close();
        await limited.close();
      }
    });
  });

  describe('when the threads cannot start', () => {
    it('should answer 503 with a code and Retry-After at once, not at the timeout, and keep serving other routes', { timeout: 30_000 }, async () => {
      // Too little heap for a thread to even start: piscina alone would leave
      // the request waiting, here for ever (no timeout). Not less: with 2 MiB,
      // Node 24 aborts the whole process while the thread starts.
      const starved = createPool({ maxThreads: 2, resourceLimits: { maxOldGenerationSizeMb: 4, maxYoungGenerationSizeMb: 1 } });
      const served = await serveChain(
        chain()
          .use('/pooled', offload(fixture('fail.mjs'), { pool: starved, timeout: 0 }))
          .use((_req, res) => res.end('still here')),
      );
      try {
        const first = await fetch(`${served.url}/pooled/ok`);
        assert.equal(first.status, 503);
        assert.equal(first.headers.get('retry-after'), '1');
        const body = await json(first);
        assert.equal(body.code, 'UNBLOCK_ERR_POOL_WORKER_START');
        assert.match(body.message, /fail to start/);
        // Refused at once while retryAfter runs.
        assert.equal((await json(fetch(`${served.url}/pooled/ok`))).code, 'UNBLOCK_ERR_POOL_WORKER_START');
        assert.equal(starved.stats().pending, 0);
        assert.equal(await (await fetch(`${served.url}/other`)).text(), 'still here');
      } finally {
        await served.close();
        await starved.close();
      }
    });
  });

  describe('timeout', () => {
    let pool: Pool;
    let served: Served;
    before(async () => {
      pool = createPool({ maxThreads: 1 });
      served = await serveChain(
        chain()
          .use('/patient', offload(fixture('slow.mjs'), { pool, timeout: 5000 }))
          .use(offload(fixture('slow.mjs'), { pool, timeout: 1000 })),
      );
    });
    after(async () => {
      await served.close();
      await pool.close();
    });

    it('should answer 503 with a code before headers, abort the task and keep serving', async () => {
      const reports = collectReports();
      try {
        const res = await fetch(`${served.url}/?ms=4000&id=late`);
        assert.equal(res.status, 503);
        assert.equal((await json(res)).code, 'UNBLOCK_ERR_POOL_TIMEOUT');
        // The spinning thread was terminated: the next request does not wait for it.
        assert.equal(await (await fetch(`${served.url}/?ms=10&id=next`)).text(), 'done next');
        assert.equal(reports.reports.some((r) => r.id === 'late' && r.event === 'done'), false);
      } finally {
        reports.stop();
      }
    });

    it('should destroy the response after headers', async () => {
      const raw = await rawGet(served.port, '/?ms=4000&head&id=started');
      assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(raw, /started \r\n$/);
    });

    it('should time out a request still waiting in the queue, without running it', async () => {
      const reports = collectReports();
      try {
        const first = fetch(`${served.url}/patient?ms=1500&id=first`);
        await untilPending(pool, 1);
        const queued = await fetch(`${served.url}/?ms=10&id=queued`);
        assert.equal(queued.status, 503);
        assert.equal((await json(queued)).code, 'UNBLOCK_ERR_POOL_TIMEOUT');
        assert.equal(await (await first).text(), 'done first');
        await delay(50);
        assert.equal(reports.reports.some((r) => r.id === 'queued'), false);
      } finally {
        reports.stop();
      }
    });
  });

  describe('when the client disconnects', () => {
    let pool: Pool;
    let served: Served;
    before(async () => {
      pool = createPool({ maxThreads: 1 });
      served = await serveChain(offload(fixture('slow.mjs'), { pool, abortGrace: 200 }));
    });
    after(async () => {
      await served.close();
      await pool.close();
    });

    it("should show the handler 'aborted' and 'close', and free the thread", async () => {
      const aborted = waitForReport((r) => r.id === 'gone' && r.event === 'aborted');
      const closed = waitForReport((r) => r.id === 'gone' && r.event === 'close');
      await disconnectAfterFirstChunk(served.port, '/?ms=10&head&wait&id=gone');
      await aborted;
      assert.equal((await closed).finished, false);
      assert.equal(await (await fetch(`${served.url}/?ms=10&id=after`)).text(), 'done after');
    });

    it('should replace the thread of a handler that keeps running past abortGrace', async () => {
      const reports = collectReports();
      try {
        const started = performance.now();
        await disconnectAfterFirstChunk(served.port, '/?ms=3000&head&id=stuck');
        // With one thread, this waits for the stuck handler unless it was aborted.
        assert.equal(await (await fetch(`${served.url}/?ms=10&id=fresh`)).text(), 'done fresh');
        assert.ok(performance.now() - started < 2500, 'the next request did not wait for the stuck handler');
        assert.equal(reports.reports.some((r) => r.id === 'stuck' && r.event === 'done'), false);
      } finally {
        reports.stop();
      }
    });
  });

  describe('saturation', () => {
    it('should refuse at once with 503 and Retry-After when the queue is full, without reading the body', async () => {
      const pool = createPool({ maxThreads: 1, maxQueue: 1, retryAfter: '2s' });
      const served = await serveChain(offload(fixture('slow.mjs'), { pool }));
      try {
        const running = fetch(`${served.url}/?ms=300&id=a`);
        await untilPending(pool, 1);
        const waiting = fetch(`${served.url}/?ms=10&id=b`);
        await untilPending(pool, 2);
        // Announces a body it never sends: the answer must not wait for it.
        const refused = await new Promise<string>((resolve, reject) => {
          const socket = connect(served.port, '127.0.0.1', () =>
            socket.write('POST /?id=c HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nConnection: close\r\n\r\npartial'),
          );
          let text = '';
          socket.setEncoding('latin1');
          socket.on('data', (data: string) => {
            text += data;
            if (text.includes('}')) {
              socket.destroy();
              resolve(text);
            }
          });
          socket.on('error', reject);
        });
        assert.match(refused, /^HTTP\/1\.1 503 /);
        assert.match(refused, /\r\nRetry-After: 2\r\n/i);
        assert.match(refused, /UNBLOCK_ERR_POOL_QUEUE_FULL/);
        assert.equal(await (await running).text(), 'done a');
        assert.equal(await (await waiting).text(), 'done b');
      } finally {
        await served.close();
        await pool.close();
      }
    });

    /**
     * slow.mjs offloaded to a new pool; `get(id, ms)` records the order in
     * which responses finish; `arrived(n)` waits until the pool has taken n
     * requests, so that the order they arrive in is the order they were
     * sent in however busy the machine is.
     */
    async function onSlowPool(
      options: PoolOptions,
      run: (get: (id: string, ms: number) => Promise<void>, finished: string[], arrived: (count: number) => Promise<void>) => Promise<void>,
    ): Promise<void> {
      const pool = createPool(options);
      const served = await serveChain(offload(fixture('slow.mjs'), { pool }));
      const finished: string[] = [];
      const get = (id: string, ms: number) => timedGet(`${served.url}/?ms=${ms}&id=${id}`).then(() => void finished.push(id));
      const arrived = (count: number) =>
        eventually(() => {
          const { completed, pending } = pool.stats();
          return completed + pending >= count;
        }, `${count} requests taken`);
      try {
        await run(get, finished, arrived);
      } finally {
        await served.close();
        await pool.close();
      }
    }

    it('should serve queued requests in arrival order', () =>
      onSlowPool({ maxThreads: 1, maxQueue: 100 }, async (get, finished, arrived) => {
        const ids = [...Array(12).keys()].map(String);
        const requests: Promise<void>[] = [];
        for (const [i, id] of ids.entries()) {
          requests.push(get(id, 25));
          await arrived(i + 1);
        }
        await Promise.all(requests);
        assert.deepEqual(finished, ids);
      }));

    it('should give a request waiting behind a slow one to the first thread that frees up', () =>
      onSlowPool({ maxThreads: 2, minThreads: 2 }, async (get, finished, arrived) => {
        const slow = get('slow', 400);
        await arrived(1);
        await delay(20);
        const quick = get('quick', 60);
        await arrived(2);
        await delay(20);
        // Both threads are busy: this one waits behind one of them.
        const next = get('next', 10);
        await Promise.all([slow, quick, next]);
        assert.deepEqual(finished, ['quick', 'next', 'slow']);
      }));

    it('should not let newer requests overtake one held up behind a slow handler', () =>
      onSlowPool({ maxThreads: 2, minThreads: 2 }, async (get, finished, arrived) => {
        const requests = [get('slow', 600)];
        await arrived(1);
        await delay(20);
        requests.push(get('quick', 30));
        await arrived(2);
        await delay(20);
        // Waits behind one of the two running requests...
        requests.push(get('held', 10));
        await arrived(3);
        // ...while newer ones keep the other thread busy for longer than the slow one runs.
        for (let i = 0; i < 24; i++) requests.push(get(`newer${i}`, 30));
        await Promise.all(requests);
        assert.ok(finished.indexOf('held') < finished.indexOf('slow'), finished.join(' '));
        assert.ok(finished.indexOf('held') < finished.indexOf('newer3'), finished.join(' '));
      }));

    it('should give a request put behind a quick handler that ran long this once to another thread', () =>
      onSlowPool({ maxThreads: 2, minThreads: 2 }, async (get, finished, arrived) => {
        // One at a time: measured quick, the handler's requests go to the thread already running one.
        for (let i = 0; i < 40; i++) await get(`warm${i}`, 0);
        const long = get('long', 600);
        await arrived(41);
        await delay(5);
        // Put behind 'long' (expected quick) while it fits the lane's expected
        // backlog, else given to the other thread; taken over by the other
        // thread once 'long' held them up.
        const behind: Promise<void>[] = [];
        for (const id of ['next1', 'next2', 'next3']) {
          behind.push(get(id, 0));
          await delay(1);
        }
        await Promise.all([long, ...behind]);
        assert.equal(finished.at(-1), 'long', finished.join(' '));
      }));
  });

  describe('pool.close()', () => {
    it('should finish in-flight work and refuse new work with 503', async () => {
      const pool = createPool({ maxThreads: 1 });
      const served = await serveChain(offload(fixture('slow.mjs'), { pool }));
      try {
        const inFlight = fetch(`${served.url}/?ms=300&id=inflight`);
        await untilPending(pool, 1);
        const closing = pool.close();
        // A second call waits for the same end.
        const again = pool.close();
        assert.equal(pool.closed, true);
        const refused = await fetch(`${served.url}/?id=new`);
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get('retry-after'), '1');
        assert.equal((await json(refused)).code, 'UNBLOCK_ERR_POOL_CLOSED');
        assert.equal(await (await inFlight).text(), 'done inflight');
        await Promise.all([closing, again]);
        assert.equal(pool.stats().threads, 0);
      } finally {
        await served.close();
      }
    });

    it('should stop its threads without reporting them as failed', async () => {
      // Stopping a thread whose lane still runs would end the lane with an error.
      const warnings: Error[] = [];
      const onWarning = (warning: Error & { code?: string }): void => {
        if (warning.code === WORKER_ERROR_WARNING_CODE) warnings.push(warning);
      };
      process.on('warning', onWarning);
      try {
        for (let round = 0; round < 5; round++) {
          const pool = createPool({ maxThreads: 2, minThreads: 2 });
          const served = await serveChain(offload(fixture('slow.mjs'), { pool }));
          try {
            // Two at once: both threads take a lane.
            await Promise.all([fetch(`${served.url}/?ms=30&id=a`), fetch(`${served.url}/?ms=30&id=b`)].map(async (res) => (await res).text()));
            await pool.close();
          } finally {
            await served.close();
          }
        }
        // Warnings are emitted on a later tick.
        await delay(50);
        assert.deepEqual(warnings.map((warning) => warning.message), []);
      } finally {
        process.off('warning', onWarning);
      }
    });
  });

  describe('forward(req)', () => {
    it('should fail the request with 500 when forward throws or returns what cannot be cloned', async () => {
      const pool = createPool({ maxThreads: 1 });
      const throwing = offload(fixture('echo.mjs'), {
        pool,
        forward: () => {
          throw new Error('no user');
        },
      });
      const uncloneable = offload(fixture('echo.mjs'), { pool, forward: () => ({ callback: () => {} }) });
      const served = await serveChain(chain().use('/throws', throwing).use(uncloneable));
      try {
        for (const path of ['/throws', '/function']) {
          const res = await fetch(`${served.url}${path}`);
          assert.equal(res.status, 500);
          assert.equal((await json(res)).code, 'UNBLOCK_ERR_POOL_FORWARD');
        }
        assert.equal(pool.stats().pending, 0);
      } finally {
        await served.close();
        await pool.close();
      }
    });
  });
});

/** Requests `path` on a raw socket and hangs up as soon as the first body bytes arrive. */
function disconnectAfterFirstChunk(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    socket.on('data', (data) => {
      if (data.toString('latin1').includes('started')) {
        socket.destroy();
        resolve();
      }
    });
    socket.on('error', reject);
  });
}

/** GET over a raw socket (keep-alive, so only the server ends it); everything received until the connection closed. */
function rawGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => (received += data));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}
