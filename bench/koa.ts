// Connect-style middleware inside Koa 3: @unblock/koa's toKoa against
// koa-connect (the adapter users reach for) and against native Koa
// middleware, in the same run. Each server runs in its own process; the
// table gives req/s and server CPU per request, with ratios to native Koa.
// Run: npm run bench -- koa
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { toKoa } from '@unblock/koa';
import Koa from 'koa';
import koaConnect from 'koa-connect';
import { childCase, measure, median, printTable, serveForParent, startServer, stopServer, type Measurement } from './support.js';

const MIDDLEWARE = 5;
const passOn = (_req: IncomingMessage, _res: ServerResponse, next: (err?: unknown) => void) => next();
const answer = (_req: IncomingMessage, res: ServerResponse) => {
  res.setHeader('content-type', 'text/plain');
  res.end('hello');
};

function koaServer(setup: (app: Koa) => void) {
  const app = new Koa();
  setup(app);
  return createServer(app.callback());
}
const hello = (ctx: Koa.Context) => {
  ctx.body = 'hello';
};

const servers = {
  [`native Koa: ${MIDDLEWARE} pass-on + ctx.body`]: () =>
    koaServer((app) => {
      for (let i = 0; i < MIDDLEWARE; i++) app.use((_ctx, next) => next());
      app.use(hello);
    }),
  [`toKoa: ${MIDDLEWARE} pass-on + ctx.body`]: () =>
    koaServer((app) => {
      for (let i = 0; i < MIDDLEWARE; i++) app.use(toKoa(passOn));
      app.use(hello);
    }),
  [`koa-connect: ${MIDDLEWARE} pass-on + ctx.body`]: () =>
    koaServer((app) => {
      for (let i = 0; i < MIDDLEWARE; i++) app.use(koaConnect(passOn));
      app.use(hello);
    }),
  'toKoa: middleware answers': () => koaServer((app) => app.use(toKoa(answer))),
  'koa-connect: middleware answers': () => koaServer((app) => app.use(koaConnect(answer))),
};
type Case = keyof typeof servers;
const native = Object.keys(servers)[0] as Case;

if (childCase !== undefined) {
  serveForParent(servers[childCase as Case]());
} else {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const results = new Map<Case, Measurement[]>();
  const file = fileURLToPath(import.meta.url);
  console.log(`Koa 3; ${rounds} rounds of ${seconds}s, 50 connections, median of rounds\n`);
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
  const base = summary(native);
  printTable(
    (Object.keys(servers) as Case[]).map((name) => {
      const { rps, cpu, errors } = summary(name);
      return { server: name, 'req/s': rps, 'CPU µs/req': cpu, 'req/s vs native': rps / base.rps, 'CPU vs native': cpu / base.cpu, errors };
    }),
  );
}
