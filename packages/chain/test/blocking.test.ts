import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { chain, type BlockingInfo, type Next } from '../src/index.js';
import { serve } from '../../../test/support/http.js';

/** Holds the event loop for `ms` milliseconds, as blocking code does. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('chain({ blockingThreshold })', () => {
  it('should report a middleware that blocks longer than the threshold', async (t) => {
    const reports: BlockingInfo[] = [];
    const app = chain({ blockingThreshold: 20 })
      .use(function quick(_req: IncomingMessage, _res: ServerResponse, next: Next) {
        next();
      })
      .use('/reports', function renderReport(_req: IncomingMessage, res: ServerResponse) {
        spin(40);
        res.end('report');
      });
    app.on('blocking', (info) => reports.push(info));
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(`${url}/reports/2026?q=1`)).text(), 'report');
    assert.equal(reports.length, 1);
    const [report] = reports;
    assert.equal(report!.name, 'renderReport');
    assert.equal(report!.index, 1);
    assert.equal(report!.route, '/reports');
    assert.equal(report!.method, 'GET');
    assert.equal(report!.url, '/reports/2026?q=1');
    assert.ok(report!.duration >= 40, `duration ${report!.duration} covers the 40 ms spin`);
  });

  it('should report the mount path as given to use(), whatever case the request has', async (t) => {
    const routes: string[] = [];
    const app = chain({ blockingThreshold: 10 }).use('/Reports/Yearly', function renderYear(_req: IncomingMessage, res: ServerResponse) {
      spin(20);
      res.end('year');
    });
    app.on('blocking', (info) => routes.push(info.route));
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(`${url}/reports/YEARLY/2026`)).text(), 'year');
    assert.deepEqual(routes, ['/Reports/Yearly']);
  });

  it('should time each middleware on its own, not the ones after it', async (t) => {
    const names: string[] = [];
    const app = chain(
      { blockingThreshold: 20 },
      function callsNextAtOnce(_req: IncomingMessage, _res: ServerResponse, next: Next) {
        next();
      },
      function slow(_req: IncomingMessage, res: ServerResponse) {
        spin(30);
        res.end('done');
      },
    );
    app.on('blocking', (info) => names.push(info.name));
    const { url } = await serve(t, app);
    await (await fetch(url)).text();
    assert.deepEqual(names, ['slow']);
  });

  it('should time only the synchronous part of an async middleware', async (t) => {
    const names: string[] = [];
    const app = chain({ blockingThreshold: 20 }, async function waitsWithoutBlocking(_req: IncomingMessage, res: ServerResponse) {
      await new Promise((resolve) => setTimeout(resolve, 40));
      res.end('waited');
    });
    app.on('blocking', (info) => names.push(info.name));
    const { url } = await serve(t, app);
    assert.equal(await (await fetch(url)).text(), 'waited');
    assert.deepEqual(names, []);
  });

  it('should emit a process warning with a code when nobody listens', async (t) => {
    const warnings: (Error & { code?: string })[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    const app = chain({ blockingThreshold: 10 }, function hog(_req: IncomingMessage, res: ServerResponse) {
      spin(20);
      res.end();
    });
    const { url } = await serve(t, app);
    await (await fetch(url)).text();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, 'UNBLOCK_WARN_CHAIN_BLOCKING');
    assert.match(warnings[0]!.message, /hog/);
  });

  it('should report nothing when blockingThreshold is not set', async (t) => {
    let events = 0;
    const app = chain((_req, res) => {
      spin(20);
      res.end();
    });
    app.on('blocking', () => events++);
    const { url } = await serve(t, app);
    await (await fetch(url)).text();
    assert.equal(events, 0);
  });
});
