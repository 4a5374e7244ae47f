// After: the same Koa app, made safe in a few lines. Its blocking routes run
// on worker threads — app.js itself, loaded there, unchanged — and the rest
// of it stays on the main thread, nested as koa-mount nests apps, so /health
// answers at once however busy the logins, invoices and reports are.
import { errorHandler } from '@unblock/error-handler';
import { toKoa } from '@unblock/koa';
import { waitForBody } from '@unblock/wait-for-body';
import { createPool, offload } from '@unblock/worker-pool';
import Koa from 'koa';
import compose from 'koa-compose';
import { listen, runIfMain } from '../express-legacy/listen.js';
import legacy from './app.js';

const BLOCKING = /^\/(login|invoices\/[\w-]+|reports\/summary)$/;

export async function start(options) {
  const pool = createPool({ maxThreads: 2 });
  const errors = errorHandler();
  const offloaded = compose([
    toKoa(waitForBody({ limit: '10mb' })),
    toKoa(offload(new URL('./app.js', import.meta.url), { pool, timeout: '10s' })),
  ]);

  const app = new Koa();
  app.use(toKoa(errors.terminal));
  app.use(toKoa(errors));
  app.use((ctx, next) => (BLOCKING.test(ctx.path) ? offloaded(ctx, next) : next()));
  app.use(compose(legacy.middleware));

  const running = await listen(app.callback(), options);
  return {
    ...running,
    pool,
    async close() {
      await running.close();
      await pool.close();
    },
  };
}

await runIfMain(import.meta.url, start);
