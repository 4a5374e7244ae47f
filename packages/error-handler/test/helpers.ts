import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TestContext } from 'node:test';
import { chain } from '@unblock/chain';
import { errorHandler } from '../src/index.js';
import type { ErrorHandlerOptions, LogInfo } from '../src/index.js';
import { serve, type Listening } from '../../../test/support/http.js';

export interface Logged {
  err: unknown;
  url: string | undefined;
  info: LogInfo;
}

/** Options whose `log` collects into `logged` instead of writing to stderr. */
export function collecting(options: ErrorHandlerOptions = {}): { options: ErrorHandlerOptions; logged: Logged[] } {
  const logged: Logged[] = [];
  return { logged, options: { log: (err, req, info) => void logged.push({ err, url: req.url, info }), ...options } };
}

type App = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => unknown;

/** Serves `chain(errors, app, errors.terminal)` on plain node:http, logging into the returned list. */
export async function serveWithErrorHandler(
  t: TestContext,
  app: App,
  options: ErrorHandlerOptions = {},
): Promise<Listening & { logged: Logged[] }> {
  const { options: withLog, logged } = collecting(options);
  const errors = errorHandler(withLog);
  const listening = await serve(t, chain(errors, app, errors.terminal));
  return { ...listening, logged };
}

export { eventually } from '../../../test/support/http.js';
