import { createServer, request, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chain, type ChainItem } from '@unblock/chain';

export const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url);

export interface Served {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Starts a real server on 127.0.0.1, port 0. */
export async function serve(listener: RequestListener): Promise<Served> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Renders errors as JSON so tests can assert their fields, headers from `err.headers` included. */
export function renderError(err: unknown, _req: IncomingMessage, res: ServerResponse, _next: (err?: unknown) => void): void {
  const e = err as { status?: number; code?: string; expose?: boolean; message?: string; headers?: Record<string, string> };
  res.statusCode = e.status ?? 500;
  for (const [name, value] of Object.entries(e.headers ?? {})) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ code: e.code, status: e.status, expose: e.expose, message: e.message }));
}

/** A chain of `items` followed by the JSON error renderer, served. */
export function serveChain(...items: ChainItem[]): Promise<Served> {
  return serve(chain(...items, renderError));
}

export interface Timed {
  status: number;
  headers: IncomingMessage['headers'];
  /** Each chunk with the time it arrived (ms, performance.now()). */
  chunks: { at: number; data: string }[];
  body: string;
}

/** A node:http GET (no fetch-added headers) that records when each chunk arrives. */
export function timedGet(url: string, headers: Record<string, string> = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false, headers }, (res) => {
      const chunks: Timed['chunks'] = [];
      res.setEncoding('utf8');
      res.on('data', (data: string) => chunks.push({ at: performance.now(), data }));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, chunks, body: chunks.map((c) => c.data).join('') }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Resolves when `predicate` holds for a message on the test channel the fixtures report to. */
export function waitForReport(predicate: (message: Record<string, unknown>) => boolean, timeout = 5000): Promise<Record<string, unknown>> {
  const channel = new BroadcastChannel('worker-pool-test');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      channel.close();
      reject(new Error('no such report arrived'));
    }, timeout);
    channel.onmessage = (event) => {
      const message = (event as MessageEvent).data as Record<string, unknown>;
      if (predicate(message)) {
        clearTimeout(timer);
        channel.close();
        resolve(message);
      }
    };
  });
}

/** Collects every report on the test channel until `stop()`. */
export function collectReports(): { reports: Record<string, unknown>[]; stop(): void } {
  const channel = new BroadcastChannel('worker-pool-test');
  const reports: Record<string, unknown>[] = [];
  channel.onmessage = (event) => reports.push((event as MessageEvent).data as Record<string, unknown>);
  return { reports, stop: () => channel.close() };
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A response body parsed as JSON, loosely typed for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const json = async (res: Response | Promise<Response>): Promise<Record<string, any>> => (await (await res).json()) as Record<string, any>;
