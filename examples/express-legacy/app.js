// An existing Express app, as it has been for years: fast routes beside
// routes that block the event loop — a password hash (crypto.pbkdf2Sync),
// a big server-rendered page (synchronous templating) and a large JSON
// report (a synchronous transform). This file is not changed to make it
// safe: see server.js.
import { pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import express from 'express';
import { invoicePage } from './views.js';

// PBKDF2-HMAC-SHA256 with OWASP's 600,000 iterations: some 400 ms of CPU per login here.
const ITERATIONS = 600_000;
const users = new Map([
  ['ada', { salt: '7f3c9a1e5b2d4c60', hash: 'd2526bd961d07f7fda594468edc56235580379a5f23061855dc2e1f1e95d604c' }],
]);

const app = express();

app.get('/health', (req, res) => {
  res.json({ status: 'ok' });
});

app.post('/login', express.json(), (req, res) => {
  const { username, password } = req.body ?? {};
  const user = users.get(username);
  if (!user || typeof password !== 'string') return res.status(401).json({ error: 'unknown user or wrong password' });
  const hash = pbkdf2Sync(password, user.salt, ITERATIONS, 32, 'sha256');
  if (!timingSafeEqual(hash, Buffer.from(user.hash, 'hex'))) return res.status(401).json({ error: 'unknown user or wrong password' });
  res.json({ welcome: username });
});

app.get('/invoices/:id', (req, res) => {
  const lines = Number(req.query.lines ?? 5000);
  if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) return res.status(400).send('lines must be 1…100000');
  res.type('html').send(invoicePage(invoiceFor(req.params.id, lines)));
});

// Sales records in, a summary out: per region totals, best products, months.
app.post('/reports/summary', express.json({ limit: '10mb' }), (req, res) => {
  if (!Array.isArray(req.body)) return res.status(400).json({ error: 'expected an array of sales records' });
  res.json(summarize(req.body));
});

function invoiceFor(id, count) {
  const lines = [];
  for (let i = 0; i < count; i++) {
    lines.push({ sku: `SKU-${(i * 7919) % 10007}`, description: `Item <${i}> & co`, quantity: 1 + (i % 9), unitPrice: 1 + ((i * 37) % 500) / 10 });
  }
  return { id, customer: 'ACME & Sons', lines };
}

function summarize(records) {
  const regions = {};
  const products = {};
  const months = {};
  for (const { region, product, quantity, unitPrice, date } of records) {
    const amount = quantity * unitPrice;
    regions[region] = (regions[region] ?? 0) + amount;
    products[product] = (products[product] ?? 0) + amount;
    const month = String(date).slice(0, 7);
    months[month] = (months[month] ?? 0) + amount;
  }
  const round = (value) => Math.round(value * 100) / 100;
  return {
    records: records.length,
    regions: Object.fromEntries(Object.entries(regions).map(([name, total]) => [name, round(total)])),
    topProducts: Object.entries(products)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, total]) => ({ name, total: round(total) })),
    months: Object.keys(months)
      .sort()
      .map((month) => ({ month, total: round(months[month]) })),
  };
}

export default app;
