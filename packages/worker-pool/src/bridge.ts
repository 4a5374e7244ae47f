// The handler's side of the bridge: rebuilds a req/res pair from a Task and
// posts the response back. Runs inside a worker thread, or on the main
// thread in inline mode.
//
// req and res are real `http.IncomingMessage` / `http.ServerResponse`
// objects, because Express and Koa replace their prototypes with ones that
// inherit from those classes (Express's `res.send`, `res.json`, `sendFile`
// only need the prototype methods to work). What is replaced, as own
// properties that survive the prototype swap, is where bytes go:
// `writeHead`/`write`/`end`/`flushHeaders` post to the main thread instead
// of a socket. The socket is a stand-in carrying the peer's address.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { loadHandler, type NodeHandler } from './handler.js';
import {
  ABORTED,
  CREDIT,
  RING_FREE,
  RING_LENT,
  RING_OFFSET,
  STATE,
  WINDOW,
  headerEntries,
  internName,
  now,
  removedFraming,
  returnRing,
  serializeError,
  type BodyMessage,
  type DataMessage,
  type HeaderValue,
  type Post,
  type RequestHead,
  type ResponseHead,
  type Task,
  type TaskResult,
} from './protocol.js';

/**
 * Runs one request: load (cached) the module's handler, call it, resolve
 * once it returned and its response is over. `post` carries the response to
 * the main thread.
 */
export async function runTask(task: Task, post: Post, inline: boolean): Promise<TaskResult> {
  const startedAt = now();
  const queueWait = Math.max(0, startedAt - task.enqueuedAt);
  const credit = new Int32Array(task.credit);
  // A worker claimed the task (THREAD) before this reads STATE.
  if (Atomics.load(credit, STATE) === ABORTED) return { queueWait, runTime: 0, loading: 0 };
  const sink = new ResponseSink(post, task.id, credit, inline, queueWait);
  let exchange: Exchange | undefined;
  let loading = 0;
  try {
    const loaded = loadHandler(task.module, task.kind);
    let handler: NodeHandler;
    if (typeof loaded === 'function') {
      handler = loaded;
    } else {
      handler = await loaded;
      loading = now() - startedAt;
    }
    exchange = new Exchange(task, sink);
    watchForAborts(exchange);
    await exchange.run(handler);
  } catch (err) {
    sink.error(err);
  } finally {
    if (exchange) unwatch(exchange);
    sink.returnUnpostedRing();
    task.bodyPort?.close();
  }
  return { queueWait, runTime: now() - startedAt, loading };
}

// A handler waiting on I/O learns of an abort by polling its STATE, one timer
// for all of a thread's requests: an Atomics.waitAsync per request would be
// the event-driven way, but one cannot be cancelled when its request ends
// normally, so each would stay pending until the main thread notified it. A
// handler that writes learns of an abort at its next write.
const ABORT_POLL_MS = 20;
// The timer stops at its first tick with nothing to watch, not when the last
// request ends: a thread serving one short request after another does not
// start and stop a timer for each.
const watched = new Set<Exchange>();
let poller: NodeJS.Timeout | undefined;

function watchForAborts(exchange: Exchange): void {
  watched.add(exchange);
  poller ??= setInterval(() => {
    for (const each of watched) each.checkAborted();
    if (watched.size === 0) {
      clearInterval(poller);
      poller = undefined;
    }
  }, ABORT_POLL_MS).unref();
}

function unwatch(exchange: Exchange): void {
  watched.delete(exchange);
}

/** Posts the response to the main thread, paced by the credit window. */
class ResponseSink {
  /** The head went out (with the first chunk, or on `flushHeaders()`). */
  headSent = false;
  /** `end`, an error or a destroy went out: nothing more will. */
  finished = false;
  /** What the handler last gave `res.addTrailers()`: they go with the end. */
  trailers: [string, string][] | undefined;
  /** The headers Node's writeHead() handed `_storeHeader()`: the response's, once they can no longer change. */
  storedHeaders: StoredHeaders | null | undefined;
  /** The ring lent to this response (see lendRing()), taken on the first write through it. */
  private ring: Buffer | undefined;
  /** The ring went out with a piece: from then on the main thread gives it back. */
  private ringPosted = false;
  /** Where the next piece goes in the ring: the main thread frees space in the order it was filled. */
  private ringPosition = 0;

  constructor(
    private readonly post: Post,
    private readonly id: number,
    private readonly credit: Int32Array,
    readonly inline: boolean,
    private readonly queueWait: number,
  ) {}

  get aborted(): boolean {
    return Atomics.load(this.credit, STATE) === ABORTED;
  }

  /** Posts head (the first time), chunk and end. Returns false when nothing can be sent any more. */
  send(res: ServerResponse, chunk: Uint8Array | string | undefined, encoding: BufferEncoding | undefined, end: boolean): boolean {
    if (this.finished) return false;
    const size = chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.byteLength;
    // A whole response written by one end() rides in its message, posted at
    // once: the client has it even while the handler keeps the thread busy
    // after end(). Its bytes are not counted against the window: nothing
    // follows them.
    const whole = end && !this.headSent && size <= WHOLE_RESPONSE_LIMIT;
    if (size > 0 && !whole) {
      if (!this.inline) return this.sendThroughRing(res, chunk!, encoding, size, end);
      // Inline there is no thread to share a ring with: the bytes ride in the message.
      if (!this.waitForCredit()) return false;
    }
    if (this.aborted) return false;
    const message = this.message(res, size, end);
    const transfer: ArrayBuffer[] = [];
    if (typeof chunk === 'string') {
      message.chunk = chunk;
      if (encoding !== undefined) message.encoding = encoding;
    } else if (chunk !== undefined) {
      // A copy of exactly the view: cloning a Buffer would copy its whole
      // backing store (8 KiB of pool for a short string), and transferring
      // the caller's buffer would detach memory it still owns.
      const copy = new Uint8Array(chunk);
      message.chunk = copy;
      transfer.push(copy.buffer);
    }
    this.post(message, transfer);
    if (size > 0 && !whole) Atomics.sub(this.credit, CREDIT, size);
    return true;
  }

  /**
   * Copies the bytes into free ring space, as many pieces as the window and
   * the ring's end require, each posted as it is written. In a worker, waits
   * (blocking) for the main thread to free space.
   */
  private sendThroughRing(res: ServerResponse, chunk: Uint8Array | string, encoding: BufferEncoding | undefined, size: number, end: boolean): boolean {
    let bytes = typeof chunk === 'string' ? undefined : chunk;
    for (let done = 0; done < size; ) {
      if (!this.waitForCredit()) return false;
      const credit = Atomics.load(this.credit, CREDIT);
      // An abort adds ABORT_CREDIT after setting STATE: never mistake it for free space.
      if (this.aborted) return false;
      const ring = (this.ring ??= Buffer.from(lendRing(Atomics.load(this.credit, WINDOW)), RING_OFFSET));
      const piece = Math.min(size - done, credit, ring.byteLength - this.ringPosition);
      if (bytes === undefined) {
        // A string is encoded straight into the ring when it fits in one piece.
        if (piece === size) ring.write(chunk as string, this.ringPosition, piece, encoding);
        else bytes = Buffer.from(chunk as string, encoding);
      }
      if (bytes !== undefined) ring.set(bytes.subarray(done, done + piece), this.ringPosition);
      done += piece;
      const message = this.message(res, piece, end && done === size);
      message.offset = this.ringPosition;
      if (!this.ringPosted) {
        message.ring = ring.buffer as SharedArrayBuffer;
        this.ringPosted = true;
      }
      this.ringPosition = (this.ringPosition + piece) % ring.byteLength;
      // Taken before the main thread can see the piece and give it back.
      Atomics.sub(this.credit, CREDIT, piece);
      this.post(message);
    }
    return true;
  }

  /** A data message; the head rides with the first one. */
  private message(res: ServerResponse, size: number, end: boolean): DataMessage {
    const message: DataMessage = { id: this.id, type: 'data', size, end };
    if (!this.headSent) {
      message.head = snapshotHead(res, this.storedHeaders, this.queueWait);
      this.headSent = true;
    }
    if (end) {
      this.finished = true;
      if (this.trailers) message.trailers = this.trailers;
    }
    return message;
  }

  /** At the task's end: a ring taken for a piece that never went out (it failed on the way) is free again at once. */
  returnUnpostedRing(): void {
    if (this.ring && !this.ringPosted) returnRing(this.ring.buffer as SharedArrayBuffer);
  }

  /** Inline: whether the window still has room (else `write()` returns false and 'drain' follows). */
  hasCredit(): boolean {
    return Atomics.load(this.credit, CREDIT) > 0;
  }

  /** Inline: calls back once the main thread returned credit (or the request was aborted), without blocking. */
  onCredit(callback: () => void): void {
    const credit = Atomics.load(this.credit, CREDIT);
    if (credit > 0 || this.aborted) {
      process.nextTick(callback);
      return;
    }
    const waiting = (Atomics as AtomicsWithWaitAsync).waitAsync(this.credit, CREDIT, credit);
    if (waiting.async) void waiting.value.then(() => this.onCredit(callback));
    else process.nextTick(() => this.onCredit(callback));
  }

  error(err: unknown): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.post({ id: this.id, type: 'error', error: serializeError(err), headSent: this.headSent });
    return true;
  }

  destroy(): void {
    if (this.finished) return;
    this.finished = true;
    this.post({ id: this.id, type: 'destroy' });
  }

  pull(bytes: number): void {
    this.post({ id: this.id, type: 'pull', bytes });
  }

  /** An interim response, written by the main thread ahead of the head; too late once the head went out. */
  interim(status: 100 | 102 | 103, hints?: Record<string, string | string[]>): void {
    if (this.headSent || this.finished) return;
    this.post(hints ? { id: this.id, type: 'interim', status, hints } : { id: this.id, type: 'interim', status });
  }

  /** The handler answered without reading the streamed body: the main thread discards the rest. */
  discard(): void {
    this.post({ id: this.id, type: 'discard' });
  }

  /**
   * In a worker, blocks until the main thread has room for more: a handler
   * that never yields cannot be paced by 'drain' events, since its event
   * loop does not run. Inline, never blocks (it would block the thread that
   * returns the credit); `write()` returns false instead.
   */
  private waitForCredit(): boolean {
    for (;;) {
      const credit = Atomics.load(this.credit, CREDIT);
      if (this.aborted) return false;
      if (credit > 0 || this.inline) return true;
      Atomics.wait(this.credit, CREDIT, credit);
    }
  }
}

/**
 * This thread's rings, by size, each lent to one response at a time: the
 * main thread gives one back (returnRing()) once the
 * response closed and its socket no longer reads it. Rings belong to the
 * thread, not to each request: a request that carried its own would cost a
 * window-sized SharedArrayBuffer (1 MiB by default) for every request in
 * flight, streamed or not (measured: 100 connections of a trivial handler
 * took 340 MB of RSS, and zeroing fresh buffers a seventh of the main
 * thread's time). Kept up to RING_BUDGET bytes a size, and always one; past
 * that a busy thread makes rings it lends once.
 */
const rings = new Map<number, Int32Array[]>();
const RING_BUDGET = 16 * 1024 * 1024;

function lendRing(size: number): SharedArrayBuffer {
  let kept = rings.get(size);
  if (!kept) rings.set(size, (kept = []));
  for (const ring of kept) if (Atomics.compareExchange(ring, 0, RING_FREE, RING_LENT) === RING_FREE) return ring.buffer as SharedArrayBuffer;
  const ring = new Int32Array(new SharedArrayBuffer(RING_OFFSET + size), 0, 1);
  ring[0] = RING_LENT;
  if (kept.length === 0 || (kept.length + 1) * size <= RING_BUDGET) kept.push(ring);
  return ring.buffer as SharedArrayBuffer;
}

/**
 * What writeHead() hands `_storeHeader()` when headers were set through
 * setHeader(), as the bridge's writeHead() does: Node's own table of them, a
 * null-prototype object from lower-cased names to `[name as set, value]`.
 * Reading it saves a copy of the names and a lookup per header (a tenth of
 * the bridge's time for a trivial response). Anything else (a writeHead()
 * of Node's called with headers of its own) is read through the public API.
 */
type StoredHeaders = Record<string, [string, HeaderValue]>;

function snapshotHead(res: ServerResponse, stored: StoredHeaders | null | undefined, queueWait: number): ResponseHead {
  let headers: [string, HeaderValue][];
  if (stored == null) {
    headers = [];
  } else if (Object.getPrototypeOf(stored) === null) {
    headers = [];
    for (const key in stored) headers.push([stored[key]![0], stored[key]![1]]);
  } else {
    headers = headerEntries(res);
  }
  const head: ResponseHead = { status: res.statusCode, message: res.statusMessage, headers, queueWait };
  if (!res.sendDate) head.sendDate = false;
  const removed = removedFraming(res);
  if (removed !== 0) head.removed = removed;
  return head;
}

/** Stands in for the TCP socket: carries the peer's address, reports `destroy()`, never carries bytes. */
class BridgeSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly encrypted?: true;

  constructor(
    head: RequestHead,
    private readonly onDestroy: () => void,
  ) {
    super();
    this.remoteAddress = head.remoteAddress;
    this.remotePort = head.remotePort;
    this.remoteFamily = head.remoteFamily;
    this.localAddress = head.localAddress;
    this.localPort = head.localPort;
    if (head.encrypted) this.encrypted = true;
  }

  override _read(): void {}

  // Only writeContinue() and the like get here; the response travels by messages.
  override _write(_chunk: unknown, _encoding: string, callback: () => void): void {
    callback();
  }

  override _destroy(_err: Error | null, callback: (err?: Error | null) => void): void {
    this.onDestroy();
    // The error, if any, is the response's: reported by the destroy message,
    // not as an 'error' event nobody listens to on a socket nobody sees.
    callback();
  }

  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address?: string; port?: number; family?: string } {
    return { address: this.localAddress, port: this.localPort, family: this.remoteFamily };
  }
}

type Chunk = string | Uint8Array;
// A whole response is copied into its message: keep that copy small.
const WHOLE_RESPONSE_LIMIT = 64 * 1024;
// Atomics.waitAsync is in Node since 16; its type is in lib es2024, newer than this project's.
type AtomicsWithWaitAsync = typeof Atomics & {
  waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
};
type Callback = (err?: Error | null) => void;
interface ResponseInternals {
  _header: string | null;
  finished: boolean;
}

/** The rebuilt req/res pair of one request, and the bookkeeping of when it is over. */
class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  private readonly socket: BridgeSocket;
  private responded = false;
  /** No more of the request's body will come: there was none to stream, it all arrived, or it was discarded. */
  private bodyOver: boolean;
  /** The handler asked for more of a streamed body: it reads it. */
  private bodyPulled = false;
  private aborted = false;
  private onResponded: () => void = () => {};

  constructor(
    private readonly task: Task,
    readonly sink: ResponseSink,
  ) {
    this.socket = new BridgeSocket(task.head, () => {
      // Reported unless the request is already over (aborted included).
      sink.destroy();
      this.respond();
    });
    this.bodyOver = !task.bodyPort;
    this.req = this.createRequest();
    this.res = this.createResponse();
    task.bodyPort?.on('message', (message: BodyMessage) => this.onBodyMessage(message));
  }

  /** The main thread flipped STATE: the client is gone or time is up. */
  checkAborted(): void {
    if (this.sink.aborted) this.abortLocally();
  }

  /**
   * Resolves when the handler returned (its promise settled), the response
   * is over and so is a streamed request body: a handler may go on reading
   * the body after it answered, as it may in Node.
   */
  run(handler: NodeHandler): Promise<void> {
    return new Promise((resolve) => {
      let returned = false;
      const maybeDone = (): void => {
        if (returned && this.responded && this.bodyOver) resolve();
      };
      const settled = (): void => {
        returned = true;
        maybeDone();
      };
      this.onResponded = maybeDone;
      try {
        const result = handler(this.req, this.res);
        if (isThenable(result)) {
          result.then(settled, (err: unknown) => {
            this.fail(err);
            settled();
          });
        } else {
          settled();
        }
      } catch (err) {
        this.fail(err);
        settled();
      }
    });
  }

  /** The response is over: finished (see finishResponse()), destroyed or aborted. */
  respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.onResponded();
  }

  private endBody(): void {
    this.bodyOver = true;
    this.onResponded();
  }

  /**
   * At the response's finish, as Node does: a body nobody reads (no 'data'
   * or 'readable' listener, no pipe, no read() that took any of it) is
   * discarded, so that req still emits 'end' and 'close', which handlers use
   * to clean up. A handler that read some of a buffered body keeps the rest
   * (Node, whose test is whether its `_read` ever ran, drops the rest of a
   * body that had arrived whole before the handler read it). A streamed body is
   * discarded on the main thread, where it arrives ('discard'); here req
   * ends at once rather than when the last byte comes in, so that a slow
   * upload nobody reads does not hold the thread.
   */
  dumpUnreadBody(): void {
    const { req } = this;
    // readableDidRead: some of it was read() (counted in chunks taken, not
    // in bytes left, which setEncoding() turns into characters).
    if (req.readableFlowing !== null || this.bodyPulled || req.readableDidRead || req.readableEnded) return;
    if (this.bodyOver) {
      // Nothing left to come and nobody to tell (most requests): no need
      // to resume req only to emit events no one hears.
      if (req.listenerCount('end') === 0 && req.listenerCount('close') === 0) return;
    } else {
      this.bodyQueue.length = 0;
      this.sink.discard();
      req.complete = true;
      req.push(null);
      this.endBody();
    }
    req.resume();
  }

  private fail(err: unknown): void {
    if (this.sink.error(err)) {
      this.abortLocally();
    } else if (!this.aborted) {
      // Nobody is left to tell: the response is over. Report it as the
      // process would report an error thrown outside any request.
      console.error('offloaded handler failed after its response ended:', err);
    }
  }

  /** The client is gone (or the task timed out): req sees 'aborted', req/res 'close', writes are dropped. */
  private abortLocally(): void {
    if (this.aborted) return;
    this.aborted = true;
    // From here on nothing is sent, nor the credit counter touched: it may
    // serve another request once this task is over.
    this.sink.finished = true;
    this.bodyOver = true;
    this.respond();
    process.nextTick(() => {
      this.req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
      this.socket.destroy();
    });
  }

  private onBodyMessage(message: BodyMessage): void {
    if (message.type === 'body') {
      this.bodyQueue.push(Buffer.from(message.chunk.buffer, message.chunk.byteOffset, message.chunk.byteLength));
    } else {
      this.bodyEnded = true;
      this.bodyTrailers = message.rawTrailers;
    }
    this.pumpBody();
  }

  /** Streamed body chunks that arrived while req's buffer was full. */
  private readonly bodyQueue: Buffer[] = [];
  private bodyWanted = true;
  private bodyEnded = false;
  private bodyTrailers: string[] | undefined;

  /** req's `_read`: the handler wants more of the streamed body. */
  pullBody(): void {
    this.bodyPulled = true;
    this.bodyWanted = true;
    this.pumpBody();
  }

  /**
   * Moves arrived chunks into req while it wants more, and acknowledges them
   * to the main thread, which keeps at most a window of unacknowledged bytes
   * in flight: memory stays bounded however slowly the handler reads.
   */
  private pumpBody(): void {
    let moved = 0;
    while (this.bodyWanted && this.bodyQueue.length > 0) {
      const chunk = this.bodyQueue.shift()!;
      moved += chunk.byteLength;
      this.bodyWanted = this.req.push(chunk);
    }
    if (moved > 0) this.sink.pull(moved);
    if (this.bodyEnded && this.bodyQueue.length === 0 && !this.req.complete) {
      this.req.complete = true;
      if (this.bodyTrailers) addTrailerLines(this.req, this.bodyTrailers);
      this.req.push(null);
      this.endBody();
    }
  }

  private createRequest(): IncomingMessage {
    const { head, body, bodyIsReqBody, bodyPort, context } = this.task;
    const req = new IncomingMessage(this.socket as never);
    req.method = head.method;
    req.url = head.url;
    // "1.1" read without the arrays that split() and map() would make per request.
    const version = head.httpVersion;
    const dot = version.indexOf('.');
    req.httpVersion = version;
    req.httpVersionMajor = dot > 0 ? Number(version.slice(0, dot)) : 1;
    req.httpVersionMinor = dot > 0 ? Number(version.slice(dot + 1)) : 1;
    // Names that crossed threads cost less as property keys once interned
    // (see internName()); inline, they are the request's own strings.
    if (!this.sink.inline) for (let i = 0; i < head.rawHeaders.length; i += 2) head.rawHeaders[i] = internName(head.rawHeaders[i]!);
    // What node's HTTP parser calls: fills rawHeaders, headers and headersDistinct.
    (req as ParsedMessage)._addHeaderLines(head.rawHeaders, head.rawHeaders.length);
    const extra = req as IncomingMessage & { originalUrl?: string; forwarded?: unknown; body?: unknown };
    extra.originalUrl = head.originalUrl;
    if (context?.forwarded !== undefined) extra.forwarded = context.forwarded;
    if (context?.body !== undefined) extra.body = context.body;
    if (bodyPort) {
      req._read = pullBody;
      (req as Bridged<IncomingMessage>)[EXCHANGE] = this;
    } else {
      req._read = readNothing;
      if (body) {
        const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        // As wait-for-body leaves it: in req.body, and readable once more.
        if (bodyIsReqBody) extra.body = bytes;
        req.push(bytes);
      }
      req.complete = true;
      if (this.task.rawTrailers) addTrailerLines(req, this.task.rawTrailers);
      req.push(null);
    }
    return req;
  }

  private createResponse(): ServerResponse {
    const res = new ServerResponse(this.req);
    res.assignSocket(this.socket as never);
    for (const [name, value] of this.task.responseHeaders) res.setHeader(internName(name), value);
    res.statusCode = this.task.responseStatus;
    // Own properties, so that they survive Express's and Koa's prototype
    // swap; the same functions for every response, which find their request
    // through EXCHANGE (see BRIDGED_RESPONSE).
    Object.assign(res, BRIDGED_RESPONSE);
    (res as Bridged<ServerResponse>)[EXCHANGE] = this;
    return res;
  }

  /** A write or end the response can no longer take: the request is aborted, the callback gets an error. */
  dropped(callback: Callback | undefined): false {
    this.abortLocally();
    if (callback) process.nextTick(callback, Object.assign(new Error('the response was aborted'), { code: 'ERR_STREAM_DESTROYED' }));
    return false;
  }
}

/** A rebuilt req or res: its exchange, for the bridge's functions it carries. */
const EXCHANGE = Symbol('unblock.exchange');
type Bridged<T> = T & { [EXCHANGE]: Exchange };

function exchangeOf(message: IncomingMessage | ServerResponse): Exchange {
  return (message as Bridged<typeof message>)[EXCHANGE];
}

/** What node's HTTP parser calls on an IncomingMessage with the header lines it read. */
type ParsedMessage = IncomingMessage & { _addHeaderLines(lines: string[], n: number): void };

/** As node's parser does at the end of a chunked body: fills rawTrailers, trailers and trailersDistinct. */
function addTrailerLines(req: IncomingMessage, rawTrailers: string[]): void {
  // Lines given once req.complete is set are its trailers.
  (req as ParsedMessage)._addHeaderLines(rawTrailers, rawTrailers.length);
}

/** A request whose body has arrived whole: nothing to pull. */
function readNothing(): void {}

/** A request whose body streams in: the handler wants more. */
function pullBody(this: IncomingMessage): void {
  exchangeOf(this).pullBody();
}

function checkChunk(chunk: unknown): void {
  if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
    throw Object.assign(new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array'), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  }
}

const nodeWriteEarlyHints = ServerResponse.prototype.writeEarlyHints as (this: ServerResponse, hints: Record<string, string | string[]>) => void;
const nodeWriteHead = ServerResponse.prototype.writeHead as (this: ServerResponse, statusCode: number, reason?: string) => ServerResponse;

/**
 * What the bridge puts on each rebuilt `res`: where its bytes go. The same
 * functions for every response, not closures made per request. Measured: a
 * closure made per request and stored in place of a prototype method (as
 * `req._read`, or these) kept every request alive through V8's
 * young-generation collections until the next full one (inline mode: 20–50
 * MB promoted in 4 s, collections ten times longer); one shared function
 * does not. Why V8 keeps them is not established.
 */
const BRIDGED_RESPONSE = {
  // Node's writeHead validates and then stores the head here; keep it
  // local (headersSent becomes true) until the first chunk takes it out.
  _storeHeader(this: ServerResponse, firstLine: string, headers?: StoredHeaders | null) {
    (this as unknown as ResponseInternals)._header = firstLine;
    exchangeOf(this).sink.storedHeaders = headers;
  },

  writeHead(this: ServerResponse, statusCode: number, reason?: string | HeaderInput, headers?: HeaderInput) {
    if (typeof reason !== 'string') [headers, reason] = [reason, undefined];
    if (headers && !this.headersSent) setHeaders(this, headers);
    return nodeWriteHead.call(this, statusCode, reason);
  },

  write(this: ServerResponse, chunk: Chunk, encoding?: BufferEncoding | Callback, callback?: Callback): boolean {
    const internals = this as unknown as ResponseInternals;
    const exchange = exchangeOf(this);
    const { sink } = exchange;
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    checkChunk(chunk);
    if (internals.finished) {
      const err = Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' });
      process.nextTick(() => {
        callback?.(err);
        this.emit('error', err);
      });
      return false;
    }
    if (!internals._header) this.writeHead(this.statusCode);
    if (chunk.length === 0 && sink.headSent) {
      if (callback) process.nextTick(callback);
      return true;
    }
    if (!sink.send(this, chunk, encoding, false)) return exchange.dropped(callback);
    if (callback) process.nextTick(callback);
    // In a worker, a full window blocks the next write (the thread has
    // nothing else to do). Inline, write() reports it and 'drain' follows.
    if (!sink.inline || sink.hasCredit()) return true;
    sink.onCredit(() => this.emit('drain'));
    return false;
  },

  end(this: ServerResponse, chunk?: Chunk | Callback, encoding?: BufferEncoding | Callback, callback?: Callback) {
    const internals = this as unknown as ResponseInternals;
    const exchange = exchangeOf(this);
    if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    if (internals.finished) {
      if (callback) process.nextTick(callback);
      return this;
    }
    if (chunk != null) checkChunk(chunk);
    if (!internals._header) this.writeHead(this.statusCode);
    internals.finished = true;
    if (!exchange.sink.send(this, chunk ?? undefined, encoding as BufferEncoding | undefined, true)) {
      exchange.dropped(callback);
      return this;
    }
    if (callback) this.once('finish', callback);
    process.nextTick(finishResponse, this);
    return this;
  },

  addTrailers(this: ServerResponse, headers: Record<string, string | number> | [string, string | number][]) {
    // Node's checks of names and values; the trailers themselves go with the end.
    ServerResponse.prototype.addTrailers.call(this, headers as never);
    const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
    exchangeOf(this).sink.trailers = pairs.map(([name, value]) => [String(name), String(value)]);
  },

  // Interim responses: Node's own checks, then the main thread writes them
  // (Node's would write to the stand-in socket, which carries no bytes).
  writeEarlyHints(this: ServerResponse, hints: Record<string, string | string[]>, callback?: () => void) {
    nodeWriteEarlyHints.call(this, hints);
    exchangeOf(this).sink.interim(103, hints);
    if (callback) process.nextTick(callback);
  },

  writeContinue(this: ServerResponse, callback?: () => void) {
    exchangeOf(this).sink.interim(100);
    if (callback) process.nextTick(callback);
  },

  writeProcessing(this: ServerResponse, callback?: () => void) {
    exchangeOf(this).sink.interim(102);
    if (callback) process.nextTick(callback);
  },

  flushHeaders(this: ServerResponse) {
    const internals = this as unknown as ResponseInternals;
    const { sink } = exchangeOf(this);
    if (!internals._header) this.writeHead(this.statusCode);
    if (!sink.headSent && !internals.finished) sink.send(this, undefined, undefined, false);
  },
};

/** After end(), as Node's response does it: 'prefinish', 'finish', then 'close'. */
function finishResponse(res: ServerResponse): void {
  res.emit('prefinish');
  // Ahead of the handler's own 'finish' listeners, as a listener of the exchange's own would be.
  exchangeOf(res).respond();
  res.emit('finish');
  exchangeOf(res).dumpUnreadBody();
  res.detachSocket(res.socket!);
  res.emit('close');
}

type HeaderInput = Record<string, HeaderValue | undefined> | HeaderValue[] | [string, HeaderValue][];

/** writeHead's headers, set one by one so that repeated names (several Set-Cookie) all survive. */
function setHeaders(res: ServerResponse, headers: HeaderInput): void {
  if (!Array.isArray(headers)) {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value);
    return;
  }
  const pairs: [string, HeaderValue][] = [];
  if (headers.length > 0 && Array.isArray(headers[0])) {
    pairs.push(...(headers as [string, HeaderValue][]));
  } else {
    if (headers.length % 2 !== 0) {
      throw Object.assign(new TypeError('The "headers" array must have an even number of entries'), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    for (let i = 0; i < headers.length; i += 2) pairs.push([String(headers[i]), headers[i + 1] as HeaderValue]);
  }
  const grouped = new Map<string, { name: string; values: (string | number)[] }>();
  for (const [name, value] of pairs) {
    const entry = grouped.get(name.toLowerCase()) ?? { name, values: [] };
    entry.values.push(...(Array.isArray(value) ? value : [value]));
    grouped.set(name.toLowerCase(), entry);
  }
  for (const { name, values } of grouped.values()) res.setHeader(name, values.length === 1 ? values[0]! : values.map(String));
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
