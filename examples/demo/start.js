// `npm start`: runs `unblock serve examples/demo/unblock.config.yaml` (the
// command's own entry point, in this process) and, once the server answers,
// prints what to try.
import { fileURLToPath } from 'node:url';
import { main } from 'unblock';

const config = fileURLToPath(new URL('./unblock.config.yaml', import.meta.url));
const host = process.env.HOST ?? '127.0.0.1';
const base = `http://${host.includes(':') ? `[${host}]` : host}:${process.env.PORT ?? 3000}`;

const serving = main(['serve', config]);

async function printTips() {
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`${base}/health`).then((res) => res.ok, () => false);
    if (up) {
      console.log(`
Try:
  curl ${base}/fast                 # answers at once, on the event loop
  curl ${base}/blocking             # ~50 ms of CPU, on a worker thread
  curl -N ${base}/stream            # blocking code streaming: lines arrive one by one
  curl ${base}/legacy/hello?name=ada
  curl -H 'content-type: application/json' -d '{"a":1}' ${base}/legacy/echo
  curl ${base}/health               # pool utilization, queue, event-loop delay

The point: keep /blocking busy and time /fast meanwhile — it stays fast:
  (for i in $(seq 20); do curl -s ${base}/blocking >/dev/null & done; wait) &
  curl -s -o /dev/null -w 'fast took %{time_total}s\\n' ${base}/fast

Without unblock (node examples/demo/server.js) the same /fast waits for every hash.
Press Ctrl+C to stop (in-flight requests finish first).`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

void printTips();
process.exit(await serving);
