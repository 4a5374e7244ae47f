import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import Koa from 'koa';

const require = createRequire(import.meta.url);

/** Koa 3 and Koa 2 (installed as the `koa2` alias), each test suite runs against both. */
export const koaVersions: ReadonlyArray<readonly [string, typeof Koa]> = [
  ['Koa 3', Koa],
  ['Koa 2', require('koa2') as typeof Koa],
];

export interface Running {
  url: string;
  close(): Promise<void>;
}

/** Listens on a free loopback port; close() also ends kept-alive connections so the test process exits. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Running> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Errors Koa reports on its app's `error` event, collected instead of logged. */
export function collectErrors(app: Koa): unknown[] {
  const errors: unknown[] = [];
  app.on('error', (err: unknown) => errors.push(err));
  return errors;
}

/** Resolves on the next turn of the event loop after pending I/O callbacks: lets late events arrive. */
export function settleIo(ms = 20): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
