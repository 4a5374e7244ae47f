// The demo server behind `npm start`: one fast route and one route that does
// about 50 ms of synchronous CPU work on the event loop. While /blocking is
// busy, /fast waits too: that is the problem unblock exists to solve.
import { pbkdf2Sync } from 'node:crypto';
import { chain } from '@unblock/chain';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';

/** About 50 ms of CPU on this machine's class of hardware: a password hash. */
function hashPassword(password) {
  return pbkdf2Sync(password, 'demo-salt', 100_000, 32, 'sha256').toString('hex');
}

function text(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${body}\n`);
}

const app = chain(
  { blockingThreshold: 20 },
  function fast(req, res, next) {
    if (req.url !== '/fast') return next();
    text(res, 200, `fast: ${new Date().toISOString()}`);
  },
  function blocking(req, res, next) {
    if (req.url !== '/blocking') return next();
    const started = performance.now();
    const hash = hashPassword('correct horse battery staple');
    text(res, 200, `blocking: ${hash.slice(0, 16)}… in ${(performance.now() - started).toFixed(1)} ms of synchronous work`);
  },
);

app.on('blocking', (info) => {
  console.log(`  ! ${info.name} held the event loop for ${info.duration.toFixed(1)} ms (${info.method} ${info.url})`);
});

const server = app.listen(port, host, () => {
  const base = `http://${host}:${port}`;
  console.log(`unblock demo listening on ${base}

Try:
  curl ${base}/fast        # answers at once
  curl ${base}/blocking    # ~50 ms of synchronous CPU work on the event loop

See the problem: keep /blocking busy and time /fast meanwhile:
  (for i in $(seq 20); do curl -s ${base}/blocking >/dev/null & done; wait) &
  curl -s -o /dev/null -w 'fast took %{time_total}s\\n' ${base}/fast

Press Ctrl+C to stop.`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
