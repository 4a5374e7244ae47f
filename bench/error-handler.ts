// @unblock/error-handler: what it costs a streaming response and a small one,
// and how fast it renders errors, in the same run.
//  1. One large streamed response (1 GiB by default) through
//     chain(errorHandler, stream, terminal) against chain(stream): client
//     throughput and the server's resident memory growth.
//  2. A small 200 response with and without the error handler, by hand on
//     node:http and in a chain (autocannon).
//  3. 404 error responses: ours against finalhandler (the end of a chain, as
//     in Connect and Express) and Koa 3's default (autocannon).
// Each server runs in its own process. Run: npm run bench -- error-handler
import { get, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { chain } from '@unblock/chain';
import { errorHandler } from '@unblock/error-handler';
import createError from 'http-errors';
import Koa from 'koa';
import type { ChildProcess } from 'node:child_process';
import { childCase, measure, median, printTable, serveForParent, startServer, stopServer } from './support.js';

const STREAM_BYTES = Number(process.env.BENCH_STREAM_MB ?? 1024) * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** Streams STREAM_BYTES of one reused buffer, honouring backpressure through pipe(). */
function stream(_req: IncomingMessage, res: ServerResponse): void {
  let left = STREAM_BYTES;
  res.setHeader('Content-Type', 'application/octet-stream');
  new Readable({
    read() {
      const size = Math.min(CHUNK.length, left);
      left -= size;
      this.push(size > 0 ? CHUNK.subarray(0, size) : null);
    },
  }).pipe(res);
}
const hello = (_req: IncomingMessage, res: ServerResponse) => res.end('hello');
const notFound = (_req: IncomingMessage, _res: ServerResponse, next: (err?: unknown) => void) => next(createError(404));
// Logging is not what is measured here.
const quiet = () => errorHandler({ log: () => {} });
const guarded = (handler: (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void) => {
  const errors = quiet();
  return createServer(chain(errors, handler, errors.terminal));
};

const servers = {
  'stream: chain': () => createServer(chain(stream)),
  'stream: chain + error-handler': () => guarded(stream),
  'hello: node:http': () => createServer(hello),
  'hello: node:http + error-handler': () => {
    const errors = quiet();
    return createServer((req, res) => errors(req, res, () => hello(req, res)));
  },
  'hello: chain': () => createServer(chain(hello)),
  'hello: chain + error-handler': () => guarded(hello),
  '404: finalhandler (end of chain)': () => createServer(chain({ onError: () => {} }, notFound)),
  '404: Koa 3 default': () => {
    const app = new Koa();
    app.silent = true;
    app.use((ctx) => ctx.throw(404));
    return createServer(app.callback());
  },
  '404: error-handler': () => guarded(notFound),
};
type Case = keyof typeof servers;

if (childCase !== undefined) {
  serveForParent(servers[childCase as Case]());
} else {
  const file = fileURLToPath(import.meta.url);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  // BENCH_PARTS=2,3 runs only those parts.
  const parts = (process.env.BENCH_PARTS ?? '1,2,3').split(',').map(Number);

  // 1. The large stream.
  if (parts.includes(1)) await benchStream(file, rounds);

  // 2 and 3. Small responses under load.
  for (const [part, title, cases] of [
    [2, '2. a small 200 response', ['hello: node:http', 'hello: node:http + error-handler', 'hello: chain', 'hello: chain + error-handler']],
    [3, '3. 404 error responses', ['404: finalhandler (end of chain)', '404: Koa 3 default', '404: error-handler']],
  ] as [number, string, Case[]][]) {
    if (parts.includes(part)) await benchLoad(file, title, cases, rounds, seconds);
  }
}

async function benchStream(file: string, rounds: number): Promise<void> {
  const streamCases: Case[] = ['stream: chain', 'stream: chain + error-handler'];
  const streamed = new Map<Case, StreamResult[]>();
  console.log(`1. one streamed response of ${STREAM_BYTES / 2 ** 20} MiB; ${rounds} rounds, median (range)\n`);
  for (let round = 0; round < rounds; round++) {
    // ABBA order: whatever the first or second run of a round suffers from is shared.
    for (const name of round % 2 === 0 ? streamCases : [...streamCases].reverse()) {
      const server = await startServer(file, name);
      const result = await streamOnce(server);
      await stopServer(server);
      streamed.set(name, [...(streamed.get(name) ?? []), result]);
    }
  }
  const of = (name: Case, key: 'mbps' | 'cpuPerGiB') => streamed.get(name)!.map((r) => r[key]);
  const baseline = { mbps: median(of('stream: chain', 'mbps')), cpu: median(of('stream: chain', 'cpuPerGiB')) };
  printTable(
    streamCases.map((name) => {
      const mbps = median(of(name, 'mbps'));
      const cpu = median(of(name, 'cpuPerGiB'));
      return {
        server: name,
        'MiB/s': mbps,
        range: `${Math.min(...of(name, 'mbps')).toFixed(0)}–${Math.max(...of(name, 'mbps')).toFixed(0)}`,
        'MiB/s vs without': mbps / baseline.mbps,
        'server CPU s/GiB': cpu,
        'CPU vs without': cpu / baseline.cpu,
        'RSS growth MiB (max)': Math.max(...streamed.get(name)!.map((r) => r.rssGrowth)),
      };
    }),
  );
}

async function benchLoad(file: string, title: string, cases: Case[], rounds: number, seconds: number): Promise<void> {
  console.log(`\n${title}; ${rounds} rounds of ${seconds}s, 50 connections, median\n`);
  const results = new Map<Case, { rps: number; cpu: number }[]>();
  for (let round = 0; round < rounds; round++) {
    // Each round starts with a different case, so that no case is always measured first or last.
    for (const name of [...cases.slice(round % cases.length), ...cases.slice(0, round % cases.length)]) {
      const server = await startServer(file, name);
      await measure(server, { connections: 50, seconds: 1 }); // warm-up
      const { requestsPerSecond, cpuPerRequest } = await measure(server, { connections: 50, seconds });
      await stopServer(server);
      results.set(name, [...(results.get(name) ?? []), { rps: requestsPerSecond, cpu: cpuPerRequest }]);
    }
  }
  const first = median(results.get(cases[0]!)!.map((r) => r.rps));
  const firstCpu = median(results.get(cases[0]!)!.map((r) => r.cpu));
  printTable(
    cases.map((name) => {
      const rps = median(results.get(name)!.map((r) => r.rps));
      const cpu = median(results.get(name)!.map((r) => r.cpu));
      return { server: name, 'req/s': rps, 'CPU µs/req': cpu, 'req/s vs first': rps / first, 'CPU vs first': cpu / firstCpu };
    }),
  );
}

interface StreamResult {
  mbps: number;
  /** Server CPU (user + system) seconds per GiB sent: less disturbed by other load on the machine than MiB/s. */
  cpuPerGiB: number;
  rssGrowth: number;
}

/** Downloads the stream once, sampling the server's RSS every 50 ms. */
async function streamOnce(server: Awaited<ReturnType<typeof startServer>>): Promise<StreamResult> {
  const before = await usageOf(server.child);
  let peak = before.memory.rss;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await usageOf(server.child)).memory.rss);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const started = process.hrtime.bigint();
  const received = await new Promise<number>((resolve, reject) => {
    get(`http://127.0.0.1:${server.port}/`, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    }).on('error', reject);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  sampling = false;
  await sampler;
  const after = await usageOf(server.child);
  if (received !== STREAM_BYTES) throw new Error(`received ${received} of ${STREAM_BYTES} bytes`);
  const cpu = (after.cpu.user - before.cpu.user + after.cpu.system - before.cpu.system) / 1e6;
  return { mbps: received / 2 ** 20 / seconds, cpuPerGiB: cpu / (received / 2 ** 30), rssGrowth: (peak - before.memory.rss) / 2 ** 20 };
}

/** The server's CPU and memory usage, asked over IPC (serveForParent answers 'usage'); unlike support's usage() it adds no lasting listener, so it can be polled. */
function usageOf(child: ChildProcess): Promise<{ cpu: NodeJS.CpuUsage; memory: NodeJS.MemoryUsage }> {
  return new Promise((resolve) => {
    child.once('message', (message: { cpu: NodeJS.CpuUsage; memory: NodeJS.MemoryUsage }) => resolve(message));
    child.send('usage');
  });
}
