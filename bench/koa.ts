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
import { childCase, compareServers, serveForParent } from './support.js';

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
  await compareServers(fileURLToPath(import.meta.url), Object.keys(servers), native, 'Koa 3');
}
