// What crosses the thread boundary for one request. `req`/`res` cannot be
// cloned, so the request head is serialized, the body is transferred (or
// streamed over a MessagePort of its own), and the response comes back as
// messages tagged with the request's id on its lane's port. The
// response's bytes travel in a ring, a SharedArrayBuffer that the worker's
// thread lends the response with its first piece, paced by a credit counter
// in the request's own small SharedArrayBuffer: the worker copies each write
// into free ring space, the main thread writes views of the ring to the
// socket, frees the space once the socket took it, and gives the ring back
// once the response closed. Most responses never need one: a small response
// written by one end() goes out whole in one message. No chunk allocates an
// ArrayBuffer on either side: a per-chunk buffer crossing threads becomes
// garbage that V8 only collects after tens of MiB of external memory piled
// up (Node 24 let a 256 MiB response grow RSS by ~70 MiB that way). A
// MessageChannel per request would cost more than a trivial handler (tens of
// µs to open and close).
import type { ServerResponse } from 'node:http';
import type { MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

/** How the module's default export is called. `auto` detects it (see README, "Handler detection"). */
export type HandlerKind = 'auto' | 'node' | 'koa' | 'fetch';

export type HeaderValue = string | number | string[];

/** Slots of the Int32Array over the request's SharedArrayBuffer. */
export const CREDIT = 0;
export const STATE = 1;
/** The threadId of the worker running the task (0 until it starts, and inline). */
export const THREAD = 2;
/** The window (`highWaterMark` bytes): what CREDIT starts at, and the size of the response's ring. */
export const WINDOW = 3;
/**
 * Who learns first that the task is over, when its last message ended its
 * response (see endsResponse()): the main thread, reading that message, swaps
 * in RESPONSE_READ; the worker's thread, at the task's end, swaps in
 * TASK_OVER with the result in RESULT_OFFSET before it. Whoever swaps second
 * sees the other's mark: a worker that finds RESPONSE_READ posts the task's
 * end as a message; a main thread that finds TASK_OVER reads the result here
 * and the worker posts nothing. A trivial handler's task is over long before
 * the main thread reads its response, so most tasks end without a message of
 * their own: one message per request instead of two.
 */
export const TASK_END = 4;
export const TASK_RUNNING = 0;
export const RESPONSE_READ = 1;
export const TASK_OVER = 2;
/** Where the result (queueWait, runTime, loading: Float64) is left for the main thread. */
const RESULT_OFFSET = 24;
/** The request's SharedArrayBuffer: CREDIT, STATE, THREAD, WINDOW, TASK_END, a spare Int32, then the result. */
export const SLOTS_BYTES = RESULT_OFFSET + 3 * Float64Array.BYTES_PER_ELEMENT;
/** A ring's first Int32: lent to a response, or free for its thread to lend again. */
export const RING_FREE = 0;
export const RING_LENT = 1;
/** Where a ring's bytes start in its SharedArrayBuffer: after its lent word, 8-byte aligned. */
export const RING_OFFSET = 8;

/** Gives a ring back to the thread that lent it: no one reads or writes it any more. */
export function returnRing(ring: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(ring, 0, 1), 0, RING_FREE);
}
export const RUNNING = 0;
/** The client is gone or the deadline passed: writes are dropped, req/res see 'aborted'/'close'. */
export const ABORTED = 1;
/**
 * Added to the credit on abort: the value changes, so a worker about to
 * `Atomics.wait` on the old value cannot miss the wake-up, and it never
 * blocks again for this request.
 */
export const ABORT_CREDIT = 2 ** 30;

export interface RequestHead {
  method: string;
  /** Mount-relative URL with query (what `req.url` is at the offload middleware). */
  url: string;
  /** The URL as the client sent it (`req.originalUrl` when an upstream router set it). */
  originalUrl: string;
  httpVersion: string;
  rawHeaders: string[];
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  remoteFamily: string | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  encrypted: boolean;
}

export interface Task {
  /** Tags the response messages of this request: set by the pool, unique among its requests. */
  id: number;
  /** `file:` URL of the handler module. */
  module: string;
  kind: HandlerKind;
  head: RequestHead;
  /** Headers already set on the main-thread response by upstream middleware. */
  responseHeaders: [string, HeaderValue][];
  /** The status upstream middleware set (200 unless it did). */
  responseStatus: number;
  /** The whole body when it was already buffered; `null` when it is streamed or empty. */
  body: Uint8Array | null;
  /** `body` is what upstream middleware left in `req.body`: the handler gets it there too. */
  bodyIsReqBody: boolean;
  /** When the body is streamed: `body`/`end` messages arrive on this port. */
  bodyPort: MessagePort | null;
  /** The request's trailers (after a chunked body) when its body was over before it was offloaded; else they come with the body's end. */
  rawTrailers: string[] | null;
  /** `forward(req)`'s value, and a parsed (non-Buffer) `req.body`. */
  context: { forwarded: unknown; body: unknown } | null;
  /** The request's slots (see SLOTS_BYTES): CREDIT counts the free bytes of the window. */
  credit: SharedArrayBuffer;
  /** `performance.timeOrigin + performance.now()` when the task was submitted: comparable across threads. */
  enqueuedAt: number;
  /**
   * What THREAD holds while the task waits in a lane (negative, set by the
   * pool). The thread that runs it swaps in its threadId; a thread that finds
   * another value skips it: the pool took it back and gave it to another.
   */
  claim: number;
}

export interface TaskResult {
  queueWait: number;
  runTime: number;
  /** The part of `runTime` spent loading the handler's module (and its `init`): its first request on a thread. */
  loading: number;
}

export interface ResponseHead {
  status: number;
  message: string | undefined;
  headers: [string, HeaderValue][];
  /** Set (false) only when the handler turned the Date header off (`res.sendDate = false`, `removeHeader('Date')`). */
  sendDate?: false;
  /** The framing headers the handler removed, as REMOVED_* bits (see removedFraming()); set only when it removed any. */
  removed?: number;
  /** Milliseconds the task waited for a thread; for `Server-Timing`. */
  queueWait: number;
}

export interface SerializedError {
  status: number;
  expose: boolean;
  message: string;
  name: string;
  code?: string;
  stack?: string;
  headers?: Record<string, string>;
}

/** worker → main, on the lane's port */
export type WorkerMessage = { id: number } & (
  | {
      type: 'data';
      head?: ResponseHead;
      /** The bytes themselves: inline, and in a whole response written by one `end()`. */
      chunk?: Uint8Array | string;
      encoding?: BufferEncoding;
      /** Else the bytes are `size` bytes at this offset of the ring. */
      offset?: number;
      /** With the first piece through a ring: the ring, lent until the main thread gives it back (see returnRing()). */
      ring?: SharedArrayBuffer;
      size: number;
      end: boolean;
      /** With the end: what the handler gave `res.addTrailers()`. */
      trailers?: [string, string][];
    }
  | { type: 'error'; error: SerializedError; headSent: boolean }
  | { type: 'destroy' }
  | { type: 'pull'; bytes: number }
  /** The handler answered without reading the streamed body: the rest is discarded where it arrives. */
  | { type: 'discard' }
  /** An interim response before the head: 100 Continue, 102 Processing, or 103 Early Hints with its headers. */
  | { type: 'interim'; status: 100 | 102 | 103; hints?: Record<string, string | string[]> }
);

export type DataMessage = Extract<WorkerMessage, { type: 'data' }>;

/** main → worker, on the request's body port */
export type BodyMessage = { type: 'body'; chunk: Uint8Array } | { type: 'end'; rawTrailers?: string[] };

/**
 * A Task as it crosses to a lane's thread: its values in a flat array.
 * Structured cloning writes the name of every property of every object and
 * the reading thread re-creates each one: flat, a request head costs about
 * half on both threads (measured: 4.5 → 2.8 µs to post, 6.3 → 3.1 µs to read).
 */
export type WireTask = [
  id: number,
  module: string,
  kind: HandlerKind,
  method: string,
  url: string,
  originalUrl: string,
  httpVersion: string,
  rawHeaders: string[],
  remoteAddress: string | undefined,
  remotePort: number | undefined,
  remoteFamily: string | undefined,
  localAddress: string | undefined,
  localPort: number | undefined,
  encrypted: boolean,
  responseHeaders: Task['responseHeaders'],
  responseStatus: number,
  body: Uint8Array | null,
  bodyIsReqBody: boolean,
  bodyPort: MessagePort | null,
  rawTrailers: string[] | null,
  context: Task['context'],
  credit: SharedArrayBuffer,
  enqueuedAt: number,
  claim: number,
];

export function toWire({ id, module, kind, head, responseHeaders, responseStatus, body, bodyIsReqBody, bodyPort, rawTrailers, context, credit, enqueuedAt, claim }: Task): WireTask {
  const { method, url, originalUrl, httpVersion, rawHeaders, remoteAddress, remotePort, remoteFamily, localAddress, localPort, encrypted } = head;
  return [
    id, module, kind,
    method, url, originalUrl, httpVersion, rawHeaders, remoteAddress, remotePort, remoteFamily, localAddress, localPort, encrypted,
    responseHeaders, responseStatus, body, bodyIsReqBody, bodyPort, rawTrailers, context, credit, enqueuedAt, claim,
  ];
}

export function fromWire(wire: WireTask): Task {
  const [
    id, module, kind,
    method, url, originalUrl, httpVersion, rawHeaders, remoteAddress, remotePort, remoteFamily, localAddress, localPort, encrypted,
    responseHeaders, responseStatus, body, bodyIsReqBody, bodyPort, rawTrailers, context, credit, enqueuedAt, claim,
  ] = wire;
  const head = { method, url, originalUrl, httpVersion, rawHeaders, remoteAddress, remotePort, remoteFamily, localAddress, localPort, encrypted };
  return { id, module, kind, head, responseHeaders, responseStatus, body, bodyIsReqBody, bodyPort, rawTrailers, context, credit, enqueuedAt, claim };
}

/** The first value of a flat message from a lane's thread: which one it is. */
export const WIRE_DATA = 0;
export const WIRE_SETTLED = 1;

/**
 * A data message as it crosses back, flat for the same reason as WireTask:
 * it carries every small response whole, and its head (measured on one
 * thread for a trivial response: 2.5 → 1.5 µs to post, 2.6 → 1.0 µs to
 * read). An absent head has no status.
 */
export type WireData = [
  tag: typeof WIRE_DATA,
  id: number,
  size: number,
  end: boolean,
  chunk: DataMessage['chunk'],
  encoding: DataMessage['encoding'],
  offset: DataMessage['offset'],
  ring: DataMessage['ring'],
  trailers: DataMessage['trailers'],
  status: number | undefined,
  message: string | undefined,
  headers: ResponseHead['headers'] | undefined,
  queueWait: number | undefined,
  sendDate: ResponseHead['sendDate'],
  removed: ResponseHead['removed'],
];

export function toWireData({ id, size, end, chunk, encoding, offset, ring, trailers, head }: DataMessage): WireData {
  return [WIRE_DATA, id, size, end, chunk, encoding, offset, ring, trailers, head?.status, head?.message, head?.headers, head?.queueWait, head?.sendDate, head?.removed];
}

export function fromWireData(wire: WireData): DataMessage {
  const [, id, size, end, chunk, encoding, offset, ring, trailers, status, message, headers, queueWait, sendDate, removed] = wire;
  const data: DataMessage = { id, type: 'data', size, end, chunk, encoding, offset, ring, trailers };
  if (status !== undefined) data.head = { status, message, headers: headers!, queueWait: queueWait!, sendDate, removed };
  return data;
}

/**
 * A task's end as it crosses back, flat for the same reason as WireTask:
 * what the pool records, or the error that ended the task on the worker's
 * side.
 */
export type WireSettled = [tag: typeof WIRE_SETTLED, id: number, queueWait: number, runTime: number, loading: number, error: SerializedError | null];

export function toWireSettled(id: number, result: TaskResult | undefined, error?: SerializedError): WireSettled {
  if (!result) return [WIRE_SETTLED, id, 0, 0, 0, error ?? null];
  return [WIRE_SETTLED, id, result.queueWait, result.runTime, result.loading, null];
}

export function fromWireSettled(wire: WireSettled): { id: number; result?: TaskResult; error?: SerializedError } {
  const [, id, queueWait, runTime, loading, error] = wire;
  return error ? { id, error } : { id, result: { queueWait, runTime, loading } };
}

/** Whether `message` ends its response on the main thread: the relay is done with it (the task may run on). */
export function endsResponse(message: WorkerMessage): boolean {
  return message.type === 'data' ? message.end : message.type === 'error' || message.type === 'destroy';
}

/**
 * Worker side, at the end of a task whose last message ended its response:
 * leaves the result for the main thread (see TASK_END). False when the main
 * thread already read that message: the end must be posted.
 */
export function leaveResult(credit: SharedArrayBuffer, result: TaskResult): boolean {
  const values = new Float64Array(credit, RESULT_OFFSET, 3);
  values[0] = result.queueWait;
  values[1] = result.runTime;
  values[2] = result.loading;
  // Sequentially consistent: the values are visible to whoever sees TASK_OVER.
  return Atomics.exchange(new Int32Array(credit), TASK_END, TASK_OVER) === TASK_RUNNING;
}

/** Main side, on reading a message that ended a response: the task's result when it is already over, else undefined. */
export function takeResult(slots: Int32Array): TaskResult | undefined {
  if (Atomics.exchange(slots, TASK_END, RESPONSE_READ) !== TASK_OVER) return undefined;
  const [queueWait, runTime, loading] = new Float64Array(slots.buffer, RESULT_OFFSET, 3);
  return { queueWait: queueWait!, runTime: runTime!, loading: loading! };
}

/** main → worker, on a lane's port: tasks (a bare array: an object's keys cost more to clone than its values), or the end of the lane. */
export type LaneRequest = WireTask[] | 'quit';

/** worker → main, on a lane's port: that the lane's thread took it, the handlers' messages (data ones flat), and the end of each task not left beside its request (see TASK_END). */
export type LaneMessage = LaneOpened | Exclude<WorkerMessage, DataMessage> | WireData | WireSettled;

/** The first message of every lane: its thread started and took the lane. */
export type LaneOpened = { type: 'opened' };

/** The largest nice value: the lowest priority a thread can have. */
export const MAX_NICE = 19;

/** The piscina task that opens a lane: its thread takes requests from `port` until told to quit. */
export interface LaneInit {
  port: MessagePort;
  /** The pool's `nice`: how many nice levels below the main thread the lane's thread runs. */
  nice: number;
}

/** How the handler's side posts to the main thread: the lane's port in a worker, a direct call inline. */
export type Post = (message: WorkerMessage, transfer?: ArrayBuffer[]) => void;

// Each thread has its own; read once (it is a getter).
const TIME_ORIGIN = performance.timeOrigin;

/** Milliseconds since the epoch, sub-millisecond, comparable between threads. */
export function now(): number {
  return TIME_ORIGIN + performance.now();
}

/** Error classes and custom fields do not survive the thread boundary: send what an error handler needs. */
export function serializeError(err: unknown): SerializedError {
  if (typeof err !== 'object' || err === null) {
    return { status: 500, expose: false, message: String(err), name: 'Error' };
  }
  const e = err as Record<string, unknown>;
  const raw = typeof e.status === 'number' ? e.status : e.statusCode;
  const status = typeof raw === 'number' && raw >= 400 && raw <= 599 ? raw : 500;
  const serialized: SerializedError = {
    status,
    expose: typeof e.expose === 'boolean' ? e.expose : status < 500,
    message: typeof e.message === 'string' ? e.message : String(err),
    name: typeof e.name === 'string' ? e.name : 'Error',
  };
  if (typeof e.code === 'string') serialized.code = e.code;
  if (typeof e.stack === 'string') serialized.stack = e.stack;
  if (e.headers && typeof e.headers === 'object') {
    serialized.headers = Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, String(v)]));
  }
  return serialized;
}

/**
 * Which framing headers were removed from a response. Node remembers a
 * removeHeader() of Connection, Content-Length or Transfer-Encoding, not
 * only the header's absence, and frames the body otherwise: no
 * Content-Length is computed for a body given to end() (it goes chunked),
 * no chunked encoding is used (the connection closes after the body), no
 * Connection header is sent. Those are private fields of OutgoingMessage
 * (Node 20, 22, 24), read and set here alone.
 */
export const REMOVED_CONNECTION = 1;
export const REMOVED_CONTENT_LENGTH = 2;
export const REMOVED_TRANSFER_ENCODING = 4;
type RemovedFraming = { _removedConnection?: boolean; _removedContLen?: boolean; _removedTE?: boolean };

export function removedFraming(res: ServerResponse): number {
  const flags = res as ServerResponse & RemovedFraming;
  return (flags._removedConnection ? REMOVED_CONNECTION : 0) | (flags._removedContLen ? REMOVED_CONTENT_LENGTH : 0) | (flags._removedTE ? REMOVED_TRANSFER_ENCODING : 0);
}

export function setRemovedFraming(res: ServerResponse, removed: number): void {
  const flags = res as ServerResponse & RemovedFraming;
  flags._removedConnection = (removed & REMOVED_CONNECTION) !== 0;
  flags._removedContLen = (removed & REMOVED_CONTENT_LENGTH) !== 0;
  flags._removedTE = (removed & REMOVED_TRANSFER_ENCODING) !== 0;
}

/**
 * The one copy of a header name this thread has seen before. A name that
 * crossed threads is a fresh string, and a fresh string used as a property
 * key (as setHeader() and the request's headers object do) is looked up in
 * V8's string table each time: about 1 µs a header. Bounded: names are few,
 * but nothing stops a handler from inventing them.
 */
export function internName(name: string): string {
  const known = names.get(name);
  if (known !== undefined) return known;
  if (names.size < MAX_NAMES) names.set(name, name);
  return name;
}
const names = new Map<string, string>();
const MAX_NAMES = 1024;

/**
 * A response's headers with their names as set (not lower-cased), repeated
 * values as arrays. HTTP/2's compatibility response keeps no such names: there
 * they are lower-cased, as HTTP/2 sends them anyway.
 */
export function headerEntries(res: ServerResponse): [string, HeaderValue][] {
  // getRawHeaderNames() exists since Node 15.13 but is missing from @types/node 20.
  const raw = res as ServerResponse & { getRawHeaderNames?(): string[] };
  const names = raw.getRawHeaderNames ? raw.getRawHeaderNames() : res.getHeaderNames();
  return names.map((name) => [name, res.getHeader(name) as HeaderValue]);
}
