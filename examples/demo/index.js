// GET /: what the demo serves.
export default function index(req, res) {
  if (req.url !== '/' || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found: try /fast, /blocking, /stream, /legacy/hello, /health\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('unblock demo: /fast, /blocking, /stream, /legacy/hello, POST /legacy/echo, /health\n');
}
