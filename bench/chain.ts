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
import { childCase, compareServers, serveForParent } from './support.js';

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
  await compareServers(fileURLToPath(import.meta.url), Object.keys(servers), 'node:http', `hello behind ${MIDDLEWARE} no-op middleware`);
}
