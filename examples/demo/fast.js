// GET /fast: answers at once, on the event loop.
export default function fast(req, res) {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`fast: ${new Date().toISOString()}\n`);
}
