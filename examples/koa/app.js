// An existing Koa app with the same trouble as any: a password hash
// (crypto.pbkdf2Sync), a big server-rendered page (synchronous templating)
// and a large JSON report (a synchronous transform) hold the event loop.
// This file is not changed to make it safe: see server.js.
import { pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import Koa from 'koa';

// PBKDF2-HMAC-SHA256 with OWASP's 600,000 iterations: some 400 ms of CPU per login here.
const ITERATIONS = 600_000;
const users = new Map([
  ['ada', { salt: '7f3c9a1e5b2d4c60', hash: 'd2526bd961d07f7fda594468edc56235580379a5f23061855dc2e1f1e95d604c' }],
]);
const JSON_LIMIT = 10 * 1024 * 1024;

const app = new Koa();

app.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/health') ctx.body = { status: 'ok' };
  else await next();
});

app.use(async (ctx, next) => {
  if (ctx.method !== 'POST' || ctx.path !== '/login') return next();
  const { username, password } = await readJson(ctx);
  const user = users.get(username);
  const hash = user && typeof password === 'string' ? pbkdf2Sync(password, user.salt, ITERATIONS, 32, 'sha256') : undefined;
  if (!hash || !timingSafeEqual(hash, Buffer.from(user.hash, 'hex'))) ctx.throw(401, 'unknown user or wrong password');
  ctx.body = { welcome: username };
});

app.use(async (ctx, next) => {
  const id = /^\/invoices\/([\w-]+)$/.exec(ctx.path)?.[1];
  if (ctx.method !== 'GET' || id === undefined) return next();
  const lines = Number(ctx.query.lines ?? 5000);
  if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) ctx.throw(400, 'lines must be 1…100000');
  ctx.type = 'html';
  ctx.body = invoicePage(id, lines);
});

app.use(async (ctx, next) => {
  if (ctx.method !== 'POST' || ctx.path !== '/reports/summary') return next();
  const records = await readJson(ctx);
  if (!Array.isArray(records)) ctx.throw(400, 'expected an array of sales records');
  const regions = {};
  for (const { region, quantity, unitPrice } of records) regions[region] = (regions[region] ?? 0) + quantity * unitPrice;
  ctx.body = { records: records.length, regions };
});

/** The JSON body, read by hand as small Koa apps do (koa-bodyparser does the same, with more options). */
async function readJson(ctx) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > JSON_LIMIT) ctx.throw(413, 'request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') ?? {};
  } catch {
    ctx.throw(400, 'invalid JSON');
  }
}

const escapes = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (value) => String(value).replace(/[&<>"']/g, (char) => escapes[char]);
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'EUR' });

/** A synchronous template: a row per invoice line. */
function invoicePage(id, count) {
  let rows = '';
  let total = 0;
  for (let i = 0; i < count; i++) {
    const quantity = 1 + (i % 9);
    const unitPrice = 1 + ((i * 37) % 500) / 10;
    total += quantity * unitPrice;
    rows += `<tr><td>${i + 1}</td><td>${escape(`Item <${i}> & co`)}</td><td>${quantity}</td><td>${money.format(quantity * unitPrice)}</td></tr>\n`;
  }
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice ${escape(id)}</title></head>
<body><h1>Invoice ${escape(id)}</h1>
<table><tbody>
${rows}</tbody><tfoot><tr><td colspan="3">Total</td><td id="total">${money.format(total)}</td></tr></tfoot></table>
</body></html>
`;
}

export default app;
