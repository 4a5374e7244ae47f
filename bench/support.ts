// Shared by the benchmarks: each server under test runs in a child process of
// its own, so that its CPU time can be read apart from the load generator's;
// autocannon drives it over loopback; results print as a table of ratios.
import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';

export interface Measurement {
  requests: number;
  requestsPerSecond: number;
  /** Server CPU (user + system) per request, in microseconds. */
  cpuPerRequest: number;
  p99: number;
  errors: number;
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
}

/**
 * In the child: serve `server` on loopback and answer the parent's questions
 * (its port, its CPU usage so far, its memory). Call this from the bench file
 * when it runs as a child (see `isChild`).
 */
export function serveForParent(server: Server): void {
  server.listen(0, '127.0.0.1', () => {
    process.send!({ port: (server.address() as AddressInfo).port });
  });
  process.on('message', (message: string) => {
    if (message === 'usage') process.send!({ cpu: process.cpuUsage(), memory: process.memoryUsage() });
  });
  process.on('disconnect', () => process.exit(0));
}

/** The case name this process should serve, when it was started by `startServer`. */
export const childCase: string | undefined = process.env.UNBLOCK_BENCH_CASE;

/** Forks `file` (a bench file) as a child serving `name`. */
export async function startServer(file: string, name: string): Promise<ServerProcess> {
  // Node options as this process has them (none when compiled, see run.ts).
  const child = fork(file, [], {
    env: { ...process.env, UNBLOCK_BENCH_CASE: name },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await reply<{ port: number }>(child);
  return { child, port };
}

export async function stopServer({ child }: ServerProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.disconnect();
  await exited;
}

export async function usage(child: ChildProcess): Promise<{ cpu: NodeJS.CpuUsage; memory: NodeJS.MemoryUsage }> {
  child.send('usage');
  return reply(child);
}

/** The child's next message; rejects if it exits first. */
export function reply<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => {
      child.off('exit', onExit);
      resolve(message as T);
    };
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`bench server exited with ${code}`));
    };
    child.once('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Loads the server with autocannon for `seconds` and reads its CPU time over the run. */
export async function measure(
  server: ServerProcess,
  options: { connections: number; seconds: number; path?: string; method?: string; body?: Buffer },
): Promise<Measurement> {
  const before = await usage(server.child);
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}${options.path ?? '/'}`,
    connections: options.connections,
    duration: options.seconds,
    method: (options.method ?? 'GET') as 'GET',
    body: options.body,
  });
  const after = await usage(server.child);
  const cpu = after.cpu.user - before.cpu.user + (after.cpu.system - before.cpu.system);
  const requests = result.requests.total;
  return {
    requests,
    requestsPerSecond: result.requests.average,
    cpuPerRequest: requests > 0 ? cpu / requests : Number.NaN,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Prints rows as an aligned table. */
export function printTable(rows: Record<string, string | number>[]): void {
  const columns = Object.keys(rows[0] ?? {});
  const cell = (value: string | number) => (typeof value === 'number' ? value.toFixed(value >= 100 ? 0 : 2) : value);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]!).length)));
  const line = (values: string[]) => values.map((value, i) => value.padStart(widths[i]!)).join('  ');
  console.log(line(columns));
  for (const row of rows) console.log(line(columns.map((column) => cell(row[column]!))));
}

/**
 * Serves each case from `file` in its own process, in interleaved rounds (so
 * that a slow moment of the machine does not hit only one case), and prints
 * the median req/s and CPU per request of each, with ratios to `baseline`.
 */
export async function compareServers(file: string, cases: readonly string[], baseline: string, title: string): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const results = new Map<string, Measurement[]>();
  console.log(`${title}; ${rounds} rounds of ${seconds}s, 50 connections, median of rounds; ratios to ${baseline}\n`);
  for (let round = 0; round < rounds; round++) {
    for (const name of cases) {
      const server = await startServer(file, name);
      await measure(server, { connections: 50, seconds: 1 }); // warm-up
      const result = await measure(server, { connections: 50, seconds });
      await stopServer(server);
      results.set(name, [...(results.get(name) ?? []), result]);
    }
  }
  const summary = (name: string) => ({
    rps: median(results.get(name)!.map((r) => r.requestsPerSecond)),
    cpu: median(results.get(name)!.map((r) => r.cpuPerRequest)),
    errors: results.get(name)!.reduce((sum, r) => sum + r.errors, 0),
  });
  const base = summary(baseline);
  printTable(
    cases.map((name) => {
      const { rps, cpu, errors } = summary(name);
      return { server: name, 'req/s': rps, 'CPU µs/req': cpu, 'req/s ratio': rps / base.rps, 'CPU ratio': cpu / base.cpu, errors };
    }),
  );
}
