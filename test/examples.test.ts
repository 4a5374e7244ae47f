// The examples are run here, so that they never rot: the Express and Koa
// apps served before and after unblock answer the same, and after it the
// blocking routes run on worker threads while /health answers at once.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

interface Running {
  url: string;
  close(): Promise<void>;
  pool?: { stats(): { completed: number } };
}
type Start = (options: { port: number; host?: string }) => Promise<Running>;

/** Starts an example server on a free port and stops it (and its pool) after the test. */
async function start(t: TestContext, example: string, script: string): Promise<Running> {
  // A computed specifier: the examples are plain JavaScript, outside the type-checked sources.
  const module = (await import(new URL(`../examples/${example}/${script}`, import.meta.url).href)) as { start: Start };
  const running = await module.start({ port: 0 });
  t.after(() => running.close());
  return running;
}

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/problem+json' },
  body: JSON.stringify(body),
});
const login = (password: string) => json({ username: 'ada', password });
const sales = [
  { region: 'north', product: 'tea', quantity: 3, unitPrice: 2.5, date: '2026-01-04' },
  { region: 'south', product: 'coffee', quantity: 1, unitPrice: 4, date: '2026-02-11' },
  { region: 'north', product: 'coffee', quantity: 2, unitPrice: 4, date: '2026-02-20' },
];

/** Everything the example's routes answer, for comparing the server before and after. */
async function answers(url: string) {
  const invoice = await fetch(`${url}/invoices/42`);
  const page = await invoice.text();
  return {
    health: await (await fetch(`${url}/health`)).json(),
    invoice: { status: invoice.status, type: invoice.headers.get('content-type'), page },
    badInvoice: (await fetch(`${url}/invoices/42?lines=0`)).status,
    login: await (await fetch(`${url}/login`, login('correct horse battery staple'))).json(),
    wrongPassword: (await fetch(`${url}/login`, login('wrong'))).status,
    report: await (await fetch(`${url}/reports/summary`, json(sales))).json(),
  };
}

for (const example of ['express-legacy', 'koa']) {
  describe(`examples/${example}`, () => {
    it('should answer every route the same before and after unblock', async (t) => {
      const before = await start(t, example, 'server-before.js');
      const after = await start(t, example, 'server.js');
      const expected = await answers(before.url);
      assert.deepEqual(expected.health, { status: 'ok' });
      assert.equal(expected.invoice.status, 200);
      assert.match(expected.invoice.page, /<h1>Invoice 42<\/h1>/);
      assert.equal(expected.invoice.page.match(/<tr[^>]*>\s*<td>\d+<\/td>/g)?.length, 5000);
      assert.equal(expected.badInvoice, 400);
      assert.deepEqual(expected.login, { welcome: 'ada' });
      assert.equal(expected.wrongPassword, 401);
      assert.deepEqual((expected.report as { regions: unknown }).regions, { north: 15.5, south: 4 });

      const completedBefore = after.pool!.stats().completed;
      assert.deepEqual(await answers(after.url), expected);
      // The invoice, the bad invoice, two logins and the report ran on the pool
      // (a task counts as completed a moment after its response has gone out).
      const ranOnPool = () => after.pool!.stats().completed - completedBefore;
      for (let waited = 0; ranOnPool() < 5 && waited < 1000; waited += 10) await delay(10);
      assert.equal(ranOnPool(), 5);
    });

    it('should answer /health while logins hash passwords on worker threads', async (t) => {
      const { url } = await start(t, example, 'server.js');
      await (await fetch(`${url}/invoices/1?lines=1`)).text(); // the first request also starts a worker
      const finished: string[] = [];
      const logins = [1, 2].map(async () => {
        await (await fetch(`${url}/login`, login('wrong'))).arrayBuffer();
        finished.push('login');
      });
      await delay(50);
      assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
      finished.push('health');
      await Promise.all(logins);
      assert.deepEqual(finished, ['health', 'login', 'login']);
    });

    it('should refuse an oversized report before it reaches the app, with a problem+json 413', async (t) => {
      const { url } = await start(t, example, 'server.js');
      const res = await fetch(`${url}/reports/summary`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/problem+json' },
        body: `[${'"x",'.repeat(3 * 1024 * 1024)}"x"]`,
      });
      assert.equal(res.status, 413);
      const problem = (await res.json()) as { status: number; code: string };
      assert.deepEqual([problem.status, problem.code], [413, 'UNBLOCK_ERR_BODY_TOO_LARGE']);
    });
  });
}
