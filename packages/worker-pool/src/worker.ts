// The pool's worker entry. Piscina runs one lane per thread: requests come on
// the lane's port and run one at a time, in the order given; each one's
// response messages go back on the same port, and so does its end unless
// the main thread finds it beside the request (see TASK_END).
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { receiveMessageOnPort, threadId } from 'node:worker_threads';
import { runTask } from './bridge.js';
import { MAX_NICE, THREAD, endsResponse, fromWire, leaveResult, serializeError, toWireData, toWireSettled, type LaneInit, type LaneOpened, type LaneRequest, type Post, type Task, type WireSettled } from './protocol.js';

export default function lane({ port, nice }: LaneInit): Promise<void> {
  lowerPriority(nice);
  // The task whose last message so far ended its response, if any: its end
  // can be left in its SharedArrayBuffer for the main thread to find when it
  // reads that message (see TASK_END). A message of its after that one would
  // be read after the end, so it cancels this.
  let responseEndedBy = -1;
  const post: Post = (message, transfer) => {
    // Marked once posted: a message that cannot be cloned never reaches the main thread.
    port.postMessage(message.type === 'data' ? toWireData(message) : message, transfer ?? []);
    if (endsResponse(message)) responseEndedBy = message.id;
    else if (message.id === responseEndedBy) responseEndedBy = -1;
  };
  const settle = (message: WireSettled): void => port.postMessage(message);
  const waiting: Task[] = [];
  let running = false;

  async function drain(): Promise<void> {
    running = true;
    for (let task = waiting.shift(); task; task = waiting.shift()) {
      // Claimed before runTask reads STATE: either the main thread sees the
      // thread to terminate, or the task sees it was cancelled while it waited.
      if (Atomics.compareExchange(new Int32Array(task.credit), THREAD, task.claim, threadId) !== task.claim) continue;
      try {
        const result = await runTask(task, post, false);
        if (responseEndedBy === task.id && leaveResult(task.credit, result)) continue;
        settle(toWireSettled(task.id, result));
      } catch (err) {
        settle(toWireSettled(task.id, undefined, serializeError(err)));
      } finally {
        responseEndedBy = -1;
      }
    }
    running = false;
  }

  const opened: LaneOpened = { type: 'opened' };
  port.postMessage(opened);
  return new Promise((resolve) => {
    port.on('message', (first: LaneRequest) => {
      // What else is queued is taken here, without an event and a callback each.
      for (let request: LaneRequest | undefined = first; request; request = receiveMessageOnPort(port)?.message as LaneRequest | undefined) {
        if (request === 'quit') {
          port.close();
          resolve();
          return;
        }
        for (const wire of request) waiting.push(fromWire(wire));
      }
      if (!running) void drain();
    });
  });
}

/** Lanes come and go; the thread's priority is lowered once. */
let lowered = false;

/**
 * Runs this thread `nice` levels below the main thread, so that the event
 * loop gets a core first while handlers keep every core busy. Threads start
 * at their creator's nice value, so this adds to whatever the process runs
 * at. Linux only: /proc/thread-self names the thread's kernel id, and Linux's
 * setpriority() takes one; elsewhere, or where /proc is missing, the thread
 * stays level with the main thread. Lowering a priority needs no privilege.
 */
function lowerPriority(nice: number): void {
  if (lowered || nice === 0 || process.platform !== 'linux') return;
  lowered = true;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(tid, Math.min(MAX_NICE, getPriority(tid) + nice));
  } catch {
    // As documented: without /proc (or where a sandbox forbids it) the thread keeps its priority.
  }
}
