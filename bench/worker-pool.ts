// @unblock/worker-pool against what a user would otherwise pick, same run:
//
// 1. Saturation: a 5 ms CPU-bound route under 8 connections beside a trivial
//    route under 4. Inline (both on the event loop), node:cluster ×2, a bare
//    piscina `pool.run()` per request, and offload(). The trivial route's p99
//    shows whether the loop stays free; the blocking route's req/s whether
//    the bridge costs throughput against bare piscina (same thread count).
// 2. A trivial handler offloaded vs the same handler inline, under 8
//    connections and under 32: main-thread CPU per request (the thread's CPU
//    time; event-loop active time beside it), the whole process's CPU per
//    request (what bounds req/s on 2 cores shared with the load generator)
//    and req/s. Bare piscina running a trivial task is what a user would
//    otherwise pick; bare worker threads answering each request's id (no
//    request, no response, a message each way per event-loop turn) are the
//    floor of any thread hop through MessagePorts; offload's inline mode
//    shows the cost of the bridge alone.
// 3. A 100 MiB streamed response from the same module, inline vs offloaded:
//    MiB/s and the server's peak RSS growth.
// 4. Idle memory: a 2-thread pool vs a 2-process node:cluster.
//
// Each server runs in a child process; autocannon drives it over loopback.
// Run: npm run bench -- worker-pool
import cluster from 'node:cluster';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import autocannon from 'autocannon';
import { Piscina } from 'piscina';
import { createPool, offload } from '@unblock/worker-pool';
import { childCase, median, printTable, reply, startServer, stopServer, type ServerProcess } from './support.js';

const SPIN_MS = 5;
const THREADS = 2;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const STREAM_MIB = 100;
/** The period of the timer whose lateness measures the servers' event-loop delay. */
const LOOP_DELAY_RESOLUTION_MS = 1;

// The handler modules, as a user would have them in files.
const MODULES = {
  block: `export default function block(req, res) { const until = performance.now() + ${SPIN_MS}; while (performance.now() < until); res.end('done'); }`,
  piscinaTask: `export default function task() { const until = performance.now() + ${SPIN_MS}; while (performance.now() < until); return 'done'; }`,
  trivial: `export default function trivial(req, res) { res.setHeader('content-type', 'text/plain'); res.end('ok'); }`,
  piscinaTrivial: `export default function task() { return 'ok'; }`,
  // The floor: a thread that answers each batch of request ids at once.
  bareThread: `import { receiveMessageOnPort, workerData } from 'node:worker_threads';
const { port } = workerData;
port.on('message', (first) => {
  const done = [];
  for (let ids = first; ids !== undefined; ids = receiveMessageOnPort(port)?.message) done.push(...ids);
  port.postMessage(done);
});`,
  stream: `import { Readable } from 'node:stream';
const CHUNK = Buffer.alloc(64 * 1024, 120);
export default function stream(req, res) {
  res.setHeader('content-type', 'application/octet-stream');
  Readable.from((function* () { for (let i = 0; i < ${STREAM_MIB * 16}; i++) yield CHUNK; })()).pipe(res);
}`,
};
type ModuleName = keyof typeof MODULES;

function moduleFiles(): Record<ModuleName, URL> {
  const dir = process.env.UNBLOCK_BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'unblock-bench-'));
  process.env.UNBLOCK_BENCH_DIR = dir;
  const files = {} as Record<ModuleName, URL>;
  for (const [name, source] of Object.entries(MODULES)) {
    const file = join(dir, `${name}.mjs`);
    writeFileSync(file, source);
    files[name as ModuleName] = pathToFileURL(file);
  }
  return files;
}

// ---------------------------------------------------------------- servers

type Handler = (req: Parameters<RequestListener>[0], res: Parameters<RequestListener>[1]) => void;

/** Routes `/block` and `/trivial` (anything else: `/`) to handlers. */
function router(routes: Record<string, Handler>): RequestListener {
  return (req, res) => (routes[req.url ?? '/'] ?? routes['/']!)(req, res);
}

async function buildServer(role: string): Promise<RequestListener> {
  const files = moduleFiles();
  const load = async (name: ModuleName): Promise<Handler> => ((await import(files[name].href)) as { default: Handler }).default;
  const pool = () => createPool({ maxThreads: THREADS, minThreads: THREADS, maxQueue: 1024 });
  const trivial = await load('trivial');
  const fail = (res: Parameters<Handler>[1]) => (err?: unknown) => {
    res.statusCode = 500;
    res.end(String(err));
  };
  switch (role) {
    case 'inline':
    case 'cluster':
    case 'idle cluster':
      return router({ '/block': await load('block'), '/trivial': trivial });
    case 'piscina': {
      const piscina = new Piscina({ filename: fileURLToPath(files.piscinaTask), maxThreads: THREADS, minThreads: THREADS });
      return router({
        '/block': (_req, res) => {
          piscina.run(null).then((result: string) => res.end(result), fail(res));
        },
        '/trivial': trivial,
      });
    }
    case 'offload': {
      const block = offload(files.block, { pool: pool() });
      return router({ '/block': (req, res) => block(req, res, fail(res)), '/trivial': trivial });
    }
    case 'trivial inline':
      return router({ '/': trivial });
    case 'trivial, bare piscina': {
      const piscina = new Piscina({ filename: fileURLToPath(files.piscinaTrivial), maxThreads: THREADS, minThreads: THREADS });
      return router({
        '/': (_req, res) => {
          piscina.run(null).then((result: string) => {
            res.setHeader('content-type', 'text/plain');
            res.end(result);
          }, fail(res));
        },
      });
    }
    case 'trivial, bare worker threads':
      return bareThreads(files.bareThread);
    case 'trivial offload':
    case 'idle pool': {
      const offloaded = offload(files.trivial, { pool: pool() });
      return router({ '/': (req, res) => offloaded(req, res, fail(res)) });
    }
    case 'trivial bridge (inline: true)': {
      const bridged = offload(files.trivial, { inline: true });
      return router({ '/': (req, res) => bridged(req, res, fail(res)) });
    }
    case 'stream inline':
      return router({ '/': await load('stream') });
    case 'stream offload': {
      const streamed = offload(files.stream, { pool: pool() });
      return router({ '/': (req, res) => streamed(req, res, fail(res)) });
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

/**
 * The cheapest hop to a thread and back that MessagePorts allow: each
 * request's id goes to the thread with the fewest in flight, ids posted once
 * per event-loop turn (as offload() posts its tasks), and the answer is
 * written here. Nothing of the request or response crosses.
 *
 * The waiting responses are kept by slot, as the pool keeps its requests: a
 * Map gaining and losing an entry per request, once old, makes every
 * young-generation collection keep the requests its discarded tables point
 * at (measured here with `--trace-gc`: scavenges of 1.7 ms instead of 0.1,
 * mark-compacts every quarter second, and a fifth fewer req/s as soon as the
 * process had loaded a little more code, piscina or autocannon).
 */
function bareThreads(file: URL): Handler {
  const threads = Array.from({ length: THREADS }, () => {
    const { port1, port2 } = new MessageChannel();
    new Worker(file, { workerData: { port: port2 }, transferList: [port2] });
    return { port: port1, outbox: [] as number[], inFlight: 0 };
  });
  const waiting: (Parameters<Handler>[1] | undefined)[] = [];
  const free: number[] = [];
  let flushing = false;
  for (const thread of threads) {
    thread.port.on('message', (first: number[]) => {
      for (let ids: number[] | undefined = first; ids !== undefined; ids = receiveMessageOnPort(thread.port)?.message as number[] | undefined) {
        for (const id of ids) {
          thread.inFlight--;
          const res = waiting[id]!;
          waiting[id] = undefined;
          free.push(id);
          res.setHeader('content-type', 'text/plain');
          res.end('ok');
        }
      }
    });
  }
  const flush = () => {
    flushing = false;
    for (const thread of threads) {
      if (thread.outbox.length === 0) continue;
      thread.port.postMessage(thread.outbox);
      thread.outbox = [];
    }
  };
  return (_req, res) => {
    const id = free.pop() ?? waiting.length;
    waiting[id] = res;
    const thread = threads.reduce((best, each) => (each.inFlight < best.inFlight ? each : best));
    thread.inFlight++;
    thread.outbox.push(id);
    if (!flushing) {
      flushing = true;
      setImmediate(flush);
    }
  };
}

/**
 * CPU time of this process's main thread, ms. Event-loop active time is not
 * it: it also counts the moments the thread waits for a core, which on a
 * 2-core machine running worker threads and the load generator is much of it.
 * Node >= 23.9 has process.threadCpuUsage(); before it, Linux's /proc has the
 * thread's utime and stime (in USER_HZ, 100 per second); elsewhere event-loop
 * active time stands in.
 */
function mainThreadCpu(): number {
  const { threadCpuUsage } = process as { threadCpuUsage?: () => NodeJS.CpuUsage };
  if (threadCpuUsage) {
    const { user, system } = threadCpuUsage();
    return (user + system) / 1000;
  }
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return performance.eventLoopUtilization().active;
  }
}

interface Usage {
  /** Main-thread event-loop active time, ms, since start. */
  active: number;
  /** Main-thread CPU time, ms, since start. */
  cpu: number;
  /** CPU time of the whole process, every thread (workers, V8's GC and compiler threads), ms, since start. */
  processCpu: number;
  /** RSS in bytes (summed over processes for a cluster). */
  rss: number;
  /** Peak RSS since the last 'reset'. */
  peakRss: number;
  /**
   * How late a 1 ms timer on the main thread ran at p99 since the last
   * 'reset', ms: the event loop busy, or waiting for a core. Seen from the
   * server, unlike the load generator's latency, which also has its own
   * waits in it.
   */
  loopDelayP99: number;
}

/** In a child: serve `role` and answer the parent's 'usage' and 'reset' messages. */
async function child(role: string): Promise<void> {
  if (role.includes('cluster') && cluster.isPrimary) return clusterPrimary(role);
  const server = createServer(await buildServer(role));
  let peakRss = process.memoryUsage.rss();
  setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 10).unref();
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  loopDelay.enable();
  const usage = (): Usage => {
    const { user, system } = process.cpuUsage();
    // The histogram holds the timer's whole period, in ns: what is late is the rest.
    const loopDelayP99 = loopDelay.count > 0 ? Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_DELAY_RESOLUTION_MS) : 0;
    return { active: performance.eventLoopUtilization().active, cpu: mainThreadCpu(), processCpu: (user + system) / 1000, rss: process.memoryUsage.rss(), peakRss, loopDelayP99 };
  };
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', (message: string) => {
    if (message === 'reset') {
      peakRss = process.memoryUsage.rss();
      loopDelay.reset();
    }
    if (message === 'usage' || message === 'reset') process.send!(usage());
  });
  process.on('disconnect', () => process.exit(0));
}

/** A cluster primary: two workers serve; memory is summed over all three processes. */
async function clusterPrimary(role: string): Promise<void> {
  const workers = [cluster.fork({ UNBLOCK_BENCH_CASE: role }), cluster.fork({ UNBLOCK_BENCH_CASE: role })];
  const ports = await Promise.all(workers.map((worker) => new Promise<number>((resolve) => worker.once('listening', (address) => resolve(address.port)))));
  process.send!({ port: ports[0] });
  process.on('message', async (message: string) => {
    const replies = await Promise.all(
      workers.map(
        (worker) =>
          new Promise<Usage>((resolve) => {
            worker.once('message', resolve);
            worker.send(message);
          }),
      ),
    );
    const rss = process.memoryUsage.rss();
    process.send!({
      active: Math.max(...replies.map((r) => r.active)),
      cpu: Math.max(...replies.map((r) => r.cpu)),
      processCpu: replies.reduce((sum, r) => sum + r.processCpu, 0),
      rss: rss + replies.reduce((sum, r) => sum + r.rss, 0),
      peakRss: rss + replies.reduce((sum, r) => sum + r.peakRss, 0),
      loopDelayP99: Math.max(...replies.map((r) => r.loopDelayP99)),
    });
  });
  process.on('disconnect', () => {
    for (const worker of workers) worker.kill();
    process.exit(0);
  });
}

// ---------------------------------------------------------------- parent

interface Server extends ServerProcess {
  url: string;
}

async function start(role: string): Promise<Server> {
  const server = await startServer(fileURLToPath(import.meta.url), role);
  return { ...server, url: `http://127.0.0.1:${server.port}` };
}

function ask(server: Server, message: 'usage' | 'reset'): Promise<Usage> {
  server.child.send(message);
  return reply(server.child);
}

const load = (url: string, connections: number, seconds = SECONDS) => autocannon({ url, connections, duration: seconds });

async function saturation(): Promise<void> {
  const rows: Record<string, string | number>[] = [];
  let piscinaRps = Number.NaN;
  for (const role of ['inline', 'cluster', 'piscina', 'offload']) {
    const server = await start(role);
    await load(`${server.url}/block`, 2, 1); // warm up
    // The blocking load starts a second before the trivial one and ends two
    // after it, so the trivial route is measured only while the blocking
    // one is saturated: two loads started together could end a second apart
    // (the trivial load's clock started late while the loop was blocked),
    // and that last second alone, unblocked, made inline's p99 read 0 ms.
    const blocking = load(`${server.url}/block`, 8, SECONDS + 3);
    await delay(1000);
    await ask(server, 'reset');
    const trivial = await load(`${server.url}/trivial`, 4);
    const { loopDelayP99 } = await ask(server, 'usage');
    const block = await blocking;
    await stopServer(server);
    if (role === 'piscina') piscinaRps = block.requests.average;
    rows.push({
      server: role === 'cluster' ? 'node:cluster ×2' : role === 'piscina' ? 'bare piscina' : role,
      'trivial p99 ms': trivial.latency.p99,
      'loop delay p99 ms': loopDelayP99,
      'trivial req/s': trivial.requests.average,
      'blocking req/s': block.requests.average,
      'blocking vs piscina': Number.NaN,
      errors: block.errors + block.non2xx + trivial.errors + trivial.non2xx,
    });
  }
  for (const row of rows) row['blocking vs piscina'] = (row['blocking req/s'] as number) / piscinaRps;
  console.log(`\n### ${SPIN_MS} ms CPU-bound route (8 connections) beside a trivial route (4), ${THREADS} threads/processes\n`);
  printTable(rows);
}

/** 8 connections, and 32: how much batching the threads get depends on how many requests are in flight. */
async function trivialHandler(): Promise<void> {
  for (const connections of [8, 32]) await trivialRounds(connections);
}

/**
 * Rounds of the servers in turn, each warmed up until V8 has compiled
 * what it runs on every thread: on a shared 2-core machine the ratios of one
 * round swing with the neighbours' load, their median much less.
 */
async function trivialRounds(connections: number): Promise<void> {
  const roles = ['trivial inline', 'trivial offload', 'trivial, bare piscina', 'trivial, bare worker threads', 'trivial bridge (inline: true)'];
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const runs = new Map<string, Record<string, number>[]>(roles.map((role) => [role, []]));
  for (let round = 0; round < rounds; round++) {
    for (const role of roles) {
      const server = await start(role);
      await load(server.url, connections, 3);
      const before = await ask(server, 'usage');
      const result = await load(server.url, connections);
      const after = await ask(server, 'usage');
      await stopServer(server);
      const perRequest = (ms: number) => (ms * 1000) / result.requests.total;
      runs.get(role)!.push({
        'req/s': result.requests.average,
        'main-thread CPU µs/req': perRequest(after.cpu - before.cpu),
        'process CPU µs/req': perRequest(after.processCpu - before.processCpu),
        'loop busy µs/req': perRequest(after.active - before.active),
        p99: result.latency.p99,
        errors: result.errors + result.non2xx,
      });
    }
  }
  const inline = runs.get(roles[0]!)!;
  const rows = roles.map((role) => {
    const own = runs.get(role)!;
    const row: Record<string, string | number> = { server: role };
    for (const column of Object.keys(own[0]!)) row[column] = median(own.map((run) => run[column]!));
    // Ratios within each round, then their median: both sides saw the same neighbours.
    row['req/s vs inline'] = median(own.map((run, i) => run['req/s']! / inline[i]!['req/s']!));
    row['main CPU vs inline'] = median(own.map((run, i) => run['main-thread CPU µs/req']! / inline[i]!['main-thread CPU µs/req']!));
    return row;
  });
  console.log(`\n### A trivial handler: inline vs offloaded (${connections} connections; ${rounds} rounds, median)\n`);
  printTable(rows);
}

function download(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

async function bigStream(): Promise<void> {
  const rows: Record<string, string | number>[] = [];
  for (const role of ['stream inline', 'stream offload']) {
    const server = await start(role);
    await download(server.url);
    const before = await ask(server, 'reset');
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const bytes = await download(server.url);
      if (bytes !== STREAM_MIB * 1024 * 1024) throw new Error(`${role}: got ${bytes} bytes`);
      rates.push(STREAM_MIB / ((performance.now() - started) / 1000));
    }
    const after = await ask(server, 'usage');
    await stopServer(server);
    rows.push({ server: role, 'MiB/s': median(rates), 'peak RSS growth MiB': (after.peakRss - before.rss) / 1024 / 1024 });
  }
  for (const row of rows) row['MiB/s vs inline'] = (row['MiB/s'] as number) / (rows[0]!['MiB/s'] as number);
  console.log(`\n### A ${STREAM_MIB} MiB streamed response (piped Readable), same module inline and offloaded\n`);
  printTable(rows);
}

async function idleMemory(): Promise<void> {
  const rows: Record<string, string | number>[] = [];
  for (const role of ['idle pool', 'idle cluster']) {
    const server = await start(role);
    for (let i = 0; i < 20; i++) await download(role === 'idle pool' ? server.url : `${server.url}/trivial`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const { rss } = await ask(server, 'usage');
    await stopServer(server);
    rows.push({ server: role === 'idle pool' ? `pool, ${THREADS} threads` : `node:cluster, ${THREADS} processes`, 'RSS MB': rss / 1e6 });
  }
  for (const row of rows) row['vs cluster'] = (row['RSS MB'] as number) / (rows[1]!['RSS MB'] as number);
  console.log('\n### Idle memory after 20 requests\n');
  printTable(rows);
}

if (childCase) {
  await child(childCase);
} else {
  moduleFiles(); // written once; the children find them through the environment
  // Sections by name on the command line (default: all): saturation trivial stream idle.
  const sections = { saturation, trivial: trivialHandler, stream: bigStream, idle: idleMemory };
  const wanted = process.argv.slice(2).filter((name): name is keyof typeof sections => name in sections);
  try {
    for (const name of wanted.length > 0 ? wanted : (Object.keys(sections) as (keyof typeof sections)[])) await sections[name]();
  } finally {
    rmSync(process.env.UNBLOCK_BENCH_DIR!, { recursive: true, force: true });
  }
}
