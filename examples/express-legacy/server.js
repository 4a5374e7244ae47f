// After: the same app, made safe in a few lines. Its blocking routes run on
// worker threads — app.js itself, loaded there, unchanged — and everything
// else stays on the main thread as before, so /health answers at once
// however busy the logins, invoices and reports are.
import { errorHandler } from '@unblock/error-handler';
import { waitForBody } from '@unblock/wait-for-body';
import { createPool, offload } from '@unblock/worker-pool';
import express from 'express';
import legacy from './app.js';
import { listen, runIfMain } from './listen.js';

export async function start(options) {
  const pool = createPool({ maxThreads: 2 });
  const errors = errorHandler();

  const app = express();
  app.use(errors);
  app.all(
    ['/login', '/invoices/:id', '/reports/summary'],
    waitForBody({ limit: '10mb' }),
    offload(new URL('./app.js', import.meta.url), { pool, timeout: '10s' }),
  );
  app.use(legacy);
  app.use(errors.terminal);

  const running = await listen(app, options);
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
