import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { chain } from '@unblock/chain';
import bodyParser from 'body-parser';
import { createPool, offload, type Pool } from '../src/index.js';
import { eventually } from '../../../test/support/http.js';
import { collectReports, fixture, serveChain, waitForReport, type Served } from './helpers.js';

// What the handler does once its response is over: Node lets it keep
// running, read the body, or leave a promise pending; none of it may hold
// the response back, or the thread for good.
for (const inline of [false, true]) {
  describe(`offload() after the response${inline ? ' (inline)' : ''}`, () => {
    let pool: Pool;
    let served: Served;
    before(async () => {
      pool = createPool({ maxThreads: 1 });
      // Under /short a deadline the tests run past; elsewhere one they never reach.
      const options = (timeout: number) => (inline ? { inline: true, timeout } : { pool, timeout });
      const handler = offload(fixture('after-end.mjs'), options(10_000));
      served = await serveChain(
        chain()
          .use('/short', offload(fixture('after-end.mjs'), options(300)))
          .use('/buffered', bodyParser.raw({ type: () => true }), handler)
          .use(handler),
      );
      // The thread started and the module loaded, so that the short deadline
      // measures the handler alone, not a cold start on a busy machine.
      assert.equal(await (await fetch(`${served.url}/unread`)).text(), 'not read');
    });
    after(async () => {
      await served.close();
      await pool.close();
    });

    it('should send a response ended before the handler returns, even when the handler then runs past the deadline', async () => {
      const res = await fetch(`${served.url}/short/spin?ms=800`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'sent');
    });

    it('should let the handler read the body after it answered', async () => {
      const read = waitForReport((m) => m.id === 'r1' && m.event === 'read');
      const socket = connect(served.port, '127.0.0.1');
      try {
        socket.write('POST /read?id=r1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello');
        let response = '';
        await new Promise<void>((resolve) => {
          socket.on('data', (chunk: Buffer) => {
            response += chunk.toString('latin1');
            if (response.includes('accepted')) resolve();
          });
        });
        assert.match(response, /^HTTP\/1\.1 202 /);
        // The rest of the body, sent only once the response arrived.
        socket.write('world');
        assert.deepEqual(await read, { id: 'r1', event: 'read', bytes: 10 });
      } finally {
        socket.destroy();
      }
    });

    it('should keep the rest of a buffered body the handler began to read', async () => {
      const rest = waitForReport((m) => m.id === 'p1' && m.event === 'rest');
      const res = await fetch(`${served.url}/buffered/partial?id=p1`, { method: 'POST', body: 'hello world' });
      assert.equal(await res.text(), 'read some');
      assert.deepEqual(await rest, { id: 'p1', event: 'rest', first: 'he', rest: 'llo world' });
      // With an encoding set, what is left counts in characters, not bytes.
      const hex = waitForReport((m) => m.id === 'p2' && m.event === 'rest');
      await (await fetch(`${served.url}/buffered/partial?id=p2&encoding=hex`, { method: 'POST', body: 'hello world' })).text();
      assert.deepEqual(await hex, { id: 'p2', event: 'rest', first: '6865', rest: Buffer.from('llo world').toString('hex') });
    });

    it('should end and close req at the end of the response for a buffered body nobody reads, decoded or not', async () => {
      for (const query of ['id=b1', 'id=b2&encoding=utf8']) {
        const id = query.slice(3, 5);
        const closed = waitForReport((m) => m.id === id && m.event === 'req-close');
        await (await fetch(`${served.url}/buffered/unread?${query}`, { method: 'POST', body: 'héllo wörld' })).text();
        await closed;
      }
    });

    for (const [what, request] of [
      ['a request without a body', 'GET /unread?id=u1 HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['a streamed body nobody reads', 'POST /unread?id=u1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'],
    ] as const) {
      it(`should end and close req at the end of the response for ${what}`, async () => {
        const reports = collectReports();
        const socket = connect(served.port, '127.0.0.1');
        try {
          socket.write(request);
          await eventually(() => reports.reports.some((m) => m.id === 'u1' && m.event === 'req-close'), 'req to close');
          assert.deepEqual(
            reports.reports.filter((m) => m.id === 'u1').map((m) => m.event),
            ['req-end', 'req-close'],
          );
        } finally {
          reports.stop();
          socket.destroy();
        }
      });
    }

    if (!inline) {
      it('should replace the thread of a handler whose promise never settles at the deadline, and serve on', async () => {
        // One thread: the second request runs only once the first one's thread was replaced.
        const first = await fetch(`${served.url}/short/pending`);
        assert.equal(await first.text(), 'sent');
        const second = await fetch(`${served.url}/spin?ms=0`);
        assert.equal(second.status, 200);
        await eventually(() => pool.stats().pending === 0, 'the pool to hold nothing');
      });
    }
  });
}
