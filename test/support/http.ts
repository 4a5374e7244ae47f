// Real servers on loopback for the tests of every package: start one on port
// 0, talk to it with fetch or with raw bytes, and close it when the test ends.
import { createServer, type RequestListener, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface Listening {
  server: Server;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
}

/** Serves `listener` on 127.0.0.1 and closes the server (and its keep-alive sockets) after the test. */
export async function serve(t: TestContext, listener: RequestListener | Server): Promise<Listening> {
  const server = typeof listener === 'function' ? createServer(listener) : listener;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => closeServer(server));
  const { port } = server.address() as AddressInfo;
  return { server, port, url: `http://127.0.0.1:${port}` };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Sends `request` as raw bytes and resolves with everything the server sent
 * until it closed the connection (or `idleMs` passed without data), and
 * whether the connection ended cleanly or was reset.
 */
export function rawRequest(port: number, request: string | Buffer, idleMs = 1000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = (closed: boolean) => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    socket.setTimeout(idleMs, () => finish(false));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? finish(true) : reject(err)));
    socket.write(request);
  });
}

/** Waits until `check` holds, polling; for facts that settle a few ticks after a response (a log line, a pool's count). */
export async function eventually(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
