// Entry point of each worker process forked by `unblock serve`.
import { runWorker } from './worker.js';

await runWorker();
