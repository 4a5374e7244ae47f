// Measures what the README claims: how long /health takes while blocking
// requests are in flight, before and after unblock. Each server runs in its
// own process, so that this client's timers are not held up by the very
// event loop it measures. After `npm run build`:
//   node examples/express-legacy/measure.js                 # this example
//   node examples/express-legacy/measure.js examples/koa    # the Koa one
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const directory = process.argv[2] ? resolve(process.argv[2]) : fileURLToPath(new URL('.', import.meta.url));

const ROUNDS = 5;
const login = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ada', password: 'wrong' }) };

async function timed(url, init) {
  const started = performance.now();
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return performance.now() - started;
}

/** Four logins and a 5,000-line invoice at once; /health asked 50 ms into them. */
async function round(url) {
  const blocking = [...Array.from({ length: 4 }, () => timed(`${url}/login`, login)), timed(`${url}/invoices/42`)];
  await delay(50);
  const health = await timed(`${url}/health`);
  const all = await Promise.all(blocking);
  return { health, slowest: Math.max(...all) };
}

/** Starts `script` on a free port in a child process; resolves with its URL and the process. */
function serve(script) {
  const child = spawn(process.execPath, [resolve(directory, script)], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url) resolve({ url, child });
    });
    child.once('exit', () => reject(new Error(`${script} exited before listening`)));
  });
}

const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];

const rows = [];
for (const [name, script] of [
  ['before', './server-before.js'],
  ['after (unblock, 2 worker threads)', './server.js'],
]) {
  const { url, child } = await serve(script);
  await timed(`${url}/invoices/1?lines=10`); // warm up (and start the workers)
  const results = [];
  for (let i = 0; i < ROUNDS; i++) results.push(await round(url));
  child.kill('SIGTERM');
  await once(child, 'exit');
  rows.push({
    server: name,
    '/health p50 (ms)': median(results.map((r) => r.health)).toFixed(1),
    'slowest blocking request p50 (ms)': median(results.map((r) => r.slowest)).toFixed(0),
  });
}
console.table(rows);
