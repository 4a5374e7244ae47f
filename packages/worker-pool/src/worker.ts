// The pool's worker entry: piscina calls the default export once per task.
import { parentPort } from 'node:worker_threads';
import { runTask } from './bridge.js';
import type { Task, TaskResult } from './protocol.js';

export default function run(task: Task): Promise<TaskResult> {
  return runTask(task, (message, transfer) => parentPort!.postMessage(message, transfer ?? []), false);
}
