// GET /blocking: about 50 ms of synchronous CPU work (a password hash).
// Offloaded: it runs on a worker thread, and the event loop stays free.
import { pbkdf2Sync } from 'node:crypto';
import { threadId } from 'node:worker_threads';

export default function blocking(req, res) {
  const started = performance.now();
  const hash = pbkdf2Sync('correct horse battery staple', 'demo-salt', 100_000, 32, 'sha256').toString('hex');
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`blocking: ${hash.slice(0, 16)}… in ${(performance.now() - started).toFixed(1)} ms of synchronous work on worker thread ${threadId}\n`);
}
