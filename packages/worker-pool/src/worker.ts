// The pool's worker entry: piscina calls the default export once per task.
import { runTask } from './bridge.js';
import type { Task, TaskResult } from './protocol.js';

export default function run(task: Task): Promise<TaskResult> {
  return runTask(task, false);
}
