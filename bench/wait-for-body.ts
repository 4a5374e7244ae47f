// 1 MiB POST bodies read whole: @unblock/wait-for-body against raw-body called
// directly, body-parser's raw() and a hand-written `for await` loop, in the
// same run. Each server runs in its own process; the table gives req/s and
// server CPU per request with ratios to raw-body; the same again with 1 KiB
// bodies, where the per-request work shows. A last table measures
// memory: 100 uploads of 1 MiB held in flight at once (all but their last
// byte sent), then completed; the growth of the server's memory is compared
// with the bytes in flight. Run: npm run bench -- wait-for-body
import type { ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fileURLToPath } from 'node:url';
import { waitForBody } from '@unblock/wait-for-body';
import bodyParser from 'body-parser';
import getRawBody from 'raw-body';
import { childCase, measure, median, printTable, serveForParent, startServer, stopServer, type Measurement } from './support.js';

const BODY = Buffer.alloc(1024 * 1024, 'x');
const LIMIT = '2mb';
const IN_FLIGHT = 100;

type Done = (err: unknown) => void;
/**
 * Each case reads the whole body into `req.body` and calls `done`, as a
 * middleware hands it on: keeping the body on the request is part of the
 * cost (its memory lives as long as the request).
 */
const readers: Record<string, () => (req: IncomingMessage & { body?: Buffer }, res: ServerResponse, done: Done) => void> = {
  'raw-body': () => (req, _res, done) =>
    getRawBody(req, { limit: LIMIT, length: req.headers['content-length'] }, (err, body) => {
      req.body = body;
      done(err);
    }),
  '@unblock/wait-for-body': () => {
    const middleware = waitForBody({ limit: LIMIT });
    return (req, res, done) => middleware(req, res, done);
  },
  'wait-for-body replay:false': () => {
    const middleware = waitForBody({ limit: LIMIT, replay: false });
    return (req, res, done) => middleware(req, res, done);
  },
  'body-parser raw()': () => {
    const middleware = bodyParser.raw({ type: () => true, limit: LIMIT });
    return (req, res, done) => middleware(req as never, res as never, done);
  },
  'for await': () => async (req, _res, done) => {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
      req.body = Buffer.concat(chunks);
      done(null);
    } catch (err) {
      done(err);
    }
  },
};
type Case = keyof typeof readers;

/** A server answering the body's length, read by `reader`. */
function listener(reader: ReturnType<(typeof readers)[Case]>): RequestListener {
  return (req: IncomingMessage & { body?: Buffer }, res) =>
    reader(req, res, (err) => {
      if (err) {
        res.statusCode = (err as { status?: number }).status ?? 500;
        res.end();
      } else {
        res.end(String(req.body!.length));
      }
    });
}

if (childCase !== undefined) {
  const [mode, name] = childCase.split('|') as ['speed' | 'memory', Case];
  serveForParent(createServer(listener(readers[name]())));
  if (mode === 'memory') trackPeakMemory();
} else {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const file = fileURLToPath(import.meta.url);
  // BENCH_READERS=raw-body,@unblock/wait-for-body narrows the speed tables to an A/B run.
  const names = (process.env.BENCH_READERS?.split(',') ?? Object.keys(readers)) as Case[];
  if (!names.includes('raw-body') || names.some((name) => !(name in readers))) throw new Error(`BENCH_READERS: raw-body and any of ${Object.keys(readers).join(', ')}`);

  // 1 MiB is the case this middleware is for; 1 KiB bodies show what it adds per request.
  for (const [label, body] of [
    ['1 MiB', BODY],
    ['1 KiB', BODY.subarray(0, 1024)],
  ] as const) {
    console.log(`${label} POST bodies; ${rounds} rounds of ${seconds}s, 20 connections, median of rounds\n`);
    printSpeedTable(await measureSpeed(file, names, body, rounds, seconds));
    console.log();
  }

  console.log(`\nmemory: ${IN_FLIGHT} uploads of 1 MiB in flight at once (${IN_FLIGHT} MiB), growth of the server process, median of ${rounds} rounds\n`);
  const memoryCases = ['raw-body', '@unblock/wait-for-body', 'body-parser raw()'] as Case[];
  const memory = new Map<Case, Array<Record<string, number>>>();
  for (let round = 0; round < rounds; round++) {
    for (const name of memoryCases) {
      memory.set(name, [...(memory.get(name) ?? []), await measureMemory(file, name)]);
    }
  }
  printTable(
    memoryCases.map((name) => {
      const runs = memory.get(name)!;
      const row: Record<string, string | number> = { reader: name };
      for (const column of Object.keys(runs[0]!)) row[column] = median(runs.map((run) => run[column]!));
      return row;
    }),
  );
}

/** req/s and server CPU per request of each reader, `rounds` times, interleaved so that a slow moment of the machine does not hit only one. */
async function measureSpeed(file: string, names: Case[], body: Buffer, rounds: number, seconds: number): Promise<Map<Case, Measurement[]>> {
  const results = new Map<Case, Measurement[]>();
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const server = await startServer(file, `speed|${name}`);
      const load = { connections: 20, method: 'POST', body };
      await measure(server, { ...load, seconds: 1 }); // warm-up
      results.set(name, [...(results.get(name) ?? []), await measure(server, { ...load, seconds })]);
      await stopServer(server);
    }
  }
  return results;
}

function printSpeedTable(results: Map<Case, Measurement[]>): void {
  const summary = (name: Case) => ({
    rps: median(results.get(name)!.map((r) => r.requestsPerSecond)),
    cpu: median(results.get(name)!.map((r) => r.cpuPerRequest)),
    errors: results.get(name)!.reduce((sum, r) => sum + r.errors, 0),
  });
  const base = summary('raw-body');
  printTable(
    [...results.keys()].map((name) => {
      const { rps, cpu, errors } = summary(name);
      return { reader: name, 'req/s': rps, 'CPU µs/req': cpu, 'req/s vs raw-body': rps / base.rps, 'CPU vs raw-body': cpu / base.cpu, errors };
    }),
  );
}

/**
 * Holds IN_FLIGHT uploads of 1 MiB in a fresh server, all but their last
 * byte sent, then completes them; returns the server's memory growth while
 * they are held and at its peak, as ratios to the bytes in flight.
 */
async function measureMemory(file: string, name: Case): Promise<Record<string, number>> {
  const server = await startServer(file, `memory|${name}`);
  const inFlight = IN_FLIGHT * BODY.length;
  const before = await settledMemory(server.child);
  const sockets = await Promise.all(Array.from({ length: IN_FLIGHT }, () => openUpload(server.port)));
  const held = await settledMemory(server.child);
  await Promise.all(sockets.map((socket) => finishUpload(socket)));
  const peak = await ask(server.child, 'peak');
  await stopServer(server);
  return {
    'buffers held / in flight': (held.arrayBuffers - before.arrayBuffers) / inFlight,
    'RSS held / in flight': (held.rss - before.rss) / inFlight,
    'peak buffers / in flight': (peak.arrayBuffers - before.arrayBuffers) / inFlight,
    'peak RSS / in flight': (peak.rss - before.rss) / inFlight,
  };
}

/** Sends the head and all but the last byte of a 1 MiB upload; resolves once the server has had it all. */
async function openUpload(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.write(`POST / HTTP/1.1\r\nHost: bench\r\nContent-Length: ${BODY.length}\r\n\r\n`);
  await new Promise((resolve) => socket.write(BODY.subarray(0, BODY.length - 1), resolve));
  return socket;
}

/** Sends the last byte and waits for the answer. */
function finishUpload(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
    socket.write(BODY.subarray(BODY.length - 1));
  });
}

type MemoryReport = { rss: number; arrayBuffers: number };
type Child = ChildProcess;

/** The server's memory once it has stopped growing (the uploads are in its buffers, not in the kernel's). */
async function settledMemory(child: Child): Promise<MemoryReport> {
  let last = await ask(child, 'memory');
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = await ask(child, 'memory');
    if (Math.abs(now.arrayBuffers - last.arrayBuffers) < 64 * 1024) return now;
    last = now;
  }
}

function ask(child: Child, question: 'memory' | 'peak'): Promise<MemoryReport> {
  child.send(question);
  return new Promise((resolve) => child.once('message', (message) => resolve(message as MemoryReport)));
}

/**
 * In a memory child: answer 'memory' with the memory in use after a
 * garbage collection (so that a baseline is not inflated by what went
 * before), and 'peak' with the highest seen, sampled every millisecond.
 */
function trackPeakMemory(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let peak: MemoryReport = { rss: 0, arrayBuffers: 0 };
  setInterval(() => {
    const { rss, arrayBuffers } = process.memoryUsage();
    peak = { rss: Math.max(peak.rss, rss), arrayBuffers: Math.max(peak.arrayBuffers, arrayBuffers) };
  }, 1).unref();
  process.on('message', (message: unknown) => {
    if (message === 'memory') {
      gc();
      const { rss, arrayBuffers } = process.memoryUsage();
      process.send!({ rss, arrayBuffers });
    }
    if (message === 'peak') process.send!(peak);
  });
}
