// GET /stream?lines=N: blocking code that writes as it goes. Each line is
// ~100 ms of CPU; each res.write() reaches the client at once, although the
// handler never yields.
import { createHash } from 'node:crypto';

export default function stream(req, res) {
  const lines = Math.min(50, Number(new URL(req.url, 'http://demo').searchParams.get('lines') ?? 10) || 10);
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  let digest = 'unblock';
  for (let i = 1; i <= lines; i++) {
    const end = performance.now() + 100;
    while (performance.now() < end) digest = createHash('sha256').update(digest).digest('hex');
    res.write(`line ${i}/${lines}: ${digest.slice(0, 16)}\n`);
  }
  res.end('done\n');
}
