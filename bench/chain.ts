// "hello" behind 10 no-op middleware: @unblock/chain against raw node:http,
// Connect, koa-compose and Express 5, in the same run. Each server runs in its
// own process; the table gives req/s and server CPU per request, with ratios
// to raw node:http. Run: npm run bench -- chain
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { chain } from '@unblock/chain';
import connect from 'connect';
import express from 'express';
import compose from 'koa-compose';
import { childCase, measure, median, printTable, serveForParent, startServer, stopServer, type Measurement } from './support.js';

const MIDDLEWARE = 10;
const hello = (_req: IncomingMessage, res: ServerResponse) => res.end('hello');
const noop = (_req: IncomingMessage, _res: ServerResponse, next: () => void) => next();
const noops = () => Array.from({ length: MIDDLEWARE }, () => noop);

const servers = {
  'node:http': () => createServer(hello),
  '@unblock/chain': () => createServer(chain(...noops(), hello)),
  connect: () => {
    const app = connect();
    for (const fn of noops()) app.use(fn);
    app.use(hello);
    return createServer(app);
  },
  'koa-compose': () => {
    type Context = { req: IncomingMessage; res: ServerResponse };
    const middleware = Array.from({ length: MIDDLEWARE }, () => (_ctx: Context, next: () => Promise<unknown>) => next());
    const run = compose<Context>([...middleware, (ctx) => void ctx.res.end('hello')]);
    return createServer((req, res) => void run({ req, res }));
  },
  'express 5': () => {
    const app = express();
    for (const fn of noops()) app.use(fn);
    app.use(hello);
    return createServer(app);
  },
};
type Case = keyof typeof servers;

if (childCase !== undefined) {
  serveForParent(servers[childCase as Case]());
} else {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const results = new Map<Case, Measurement[]>();
  const file = fileURLToPath(import.meta.url);
  console.log(`hello behind ${MIDDLEWARE} no-op middleware; ${rounds} rounds of ${seconds}s, 50 connections, median of rounds\n`);
  // Rounds interleave the cases, so that a slow moment of the machine does not hit only one.
  for (let round = 0; round < rounds; round++) {
    for (const name of Object.keys(servers) as Case[]) {
      const server = await startServer(file, name);
      await measure(server, { connections: 50, seconds: 1 }); // warm-up
      const result = await measure(server, { connections: 50, seconds });
      await stopServer(server);
      results.set(name, [...(results.get(name) ?? []), result]);
    }
  }
  const summary = (name: Case) => ({
    rps: median(results.get(name)!.map((r) => r.requestsPerSecond)),
    cpu: median(results.get(name)!.map((r) => r.cpuPerRequest)),
    errors: results.get(name)!.reduce((sum, r) => sum + r.errors, 0),
  });
  const raw = summary('node:http');
  printTable(
    (Object.keys(servers) as Case[]).map((name) => {
      const { rps, cpu, errors } = summary(name);
      return { server: name, 'req/s': rps, 'CPU µs/req': cpu, 'req/s vs raw': rps / raw.rps, 'CPU vs raw': cpu / raw.cpu, errors };
    }),
  );
}
