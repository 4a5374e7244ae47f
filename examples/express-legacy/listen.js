// Starting and stopping a server the same way for both versions of this
// example (server-before.js, server.js) and for the tests that run them.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

/** Serves `handler`; resolves with the server, its URL and a close() that also ends kept-alive connections. */
export function listen(handler, { port = Number(process.env.PORT ?? 3000), host = process.env.HOST ?? '127.0.0.1' } = {}) {
  const server = createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      resolve({
        server,
        url: `http://${host}:${actual}`,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** When `moduleUrl` is the script node was started with: start it, say how to try it, stop on Ctrl+C. */
export async function runIfMain(moduleUrl, start) {
  if (process.argv[1] !== fileURLToPath(moduleUrl)) return;
  const running = await start();
  const { url } = running;
  console.log(`listening on ${url}

Try:
  curl ${url}/health
  curl -s ${url}/invoices/42 | tail -c 300
  curl -X POST -H 'content-type: application/json' -d '{"username":"ada","password":"correct horse battery staple"}' ${url}/login

See whether /health waits for the logins:
  for i in 1 2 3 4; do curl -s -o /dev/null -X POST -H 'content-type: application/json' \\
    -d '{"username":"ada","password":"x"}' ${url}/login & done; \\
  curl -s -o /dev/null -w 'health took %{time_total}s\\n' ${url}/health; wait

Press Ctrl+C to stop.`);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => running.close().then(() => process.exit(0)));
  }
}
