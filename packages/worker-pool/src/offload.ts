// The main thread's side of the bridge: sends the request to a worker (or
// runs it inline), writes what comes back to the real response, and turns
// every failure into either next(err) (before headers) or a destroyed
// response (after).
import { existsSync } from 'node:fs';
import { ServerResponse, type IncomingMessage } from 'node:http';
import { constants as http2Constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, type Transferable } from 'node:worker_threads';
import createError from 'http-errors';
import typeis from 'type-is';
import { runTask } from './bridge.js';
import { ForwardError, HandlerTimeoutError, WorkerCrashedError, WorkerPoolError, invalidOption } from './errors.js';
import {
  DEFAULT_ABORT_GRACE,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_TIMEOUT,
  KINDS,
  checkKnownKeys,
  checkObject,
  toBoolean,
  toDuration,
  toSize,
  type Duration,
  type Size,
} from './options.js';
import { asRunner, type Pool, type TaskListener, type TaskRunner } from './pool.js';
import {
  ABORTED,
  ABORT_CREDIT,
  CREDIT,
  RING_OFFSET,
  RUNNING,
  SLOTS_BYTES,
  STATE,
  TASK_END,
  TASK_RUNNING,
  THREAD,
  WINDOW,
  headerEntries,
  internName,
  now,
  removedFraming,
  returnRing,
  setRemovedFraming,
  type BodyMessage,
  type HandlerKind,
  type RequestHead,
  type ResponseHead,
  type SerializedError,
  type Task,
  type WorkerMessage,
} from './protocol.js';

export interface OffloadOptions<Req extends IncomingMessage = IncomingMessage> {
  /** The pool to run on (from `createPool()`). Required unless `inline`. */
  pool?: Pool;
  /** Deadline for the whole request, queue wait included: 503 before headers, destroyed response after. `0` disables. Default 30 s. */
  timeout?: Duration;
  /** How the module's default export is called. Default `'auto'` (see README, "Handler detection"). */
  kind?: HandlerKind;
  /** Run the module on the main thread through the same bridge: for debugging, and to measure the bridge. Default false. */
  inline?: boolean;
  /** After a client disconnect, how long the handler may keep running before its thread is replaced. Default 1 s. */
  abortGrace?: Duration;
  /** Bytes in flight between the threads, each way, before the writer waits. Default 1 MiB. */
  highWaterMark?: Size;
  /** Add `Server-Timing: queue;dur=<ms>` to the response. Default false. */
  serverTiming?: boolean;
  /** Context for the handler (a user, a request id): must be structured-cloneable; the handler sees it as `req.forwarded`. */
  forward?: (req: Req) => unknown;
}

/** A Connect-style middleware; `Req` is only there to type `forward(req)`. */
export type OffloadMiddleware<Req extends IncomingMessage = IncomingMessage> = (req: Req, res: ServerResponse, next: (err?: unknown) => void) => void;

interface Settings {
  module: string;
  runner: TaskRunner;
  timeout: number;
  kind: HandlerKind;
  abortGrace: number;
  highWaterMark: number;
  serverTiming: boolean;
  forward: ((req: IncomingMessage) => unknown) | undefined;
  /** Each request's SharedArrayBuffers, reused (see takeCredit()). */
  spares: Int32Array[];
}

const OPTIONS = ['pool', 'timeout', 'kind', 'inline', 'abortGrace', 'highWaterMark', 'serverTiming', 'forward'] as const;

/** Inline: the same task, run on this thread. No admission limit, and a timeout cannot stop running code. */
const inlineRunner: TaskRunner = {
  admit: () => undefined,
  run: (task, _slots, _transfer, listener) => {
    // No thread's messages to tell apart: they come straight to this listener.
    // Start on a later tick, as a worker would: never call back synchronously.
    Promise.resolve()
      .then(() => runTask(task, (message) => listener.onMessage(message), true))
      .then(
        (result) => listener.onSettled(undefined, result),
        (err: unknown) => listener.onSettled(err),
      );
    return task.id;
  },
  forget: () => {},
  terminate: () => {},
};

/**
 * Connect-style middleware that runs the default export of `module` (a
 * `(req, res)` handler, an Express/Connect/Koa app, or a fetch-style
 * handler) on a worker thread of `options.pool` and streams its response.
 *
 * ```js
 * const pool = createPool({ maxThreads: 4 });
 * app.post('/render', offload(new URL('./render.js', import.meta.url), { pool, timeout: '5s' }));
 * ```
 */
export function offload<Req extends IncomingMessage = IncomingMessage>(module: string | URL, options?: OffloadOptions<Req>): OffloadMiddleware<Req> {
  const settings = toSettings(module, options);
  return function offload(req, res, next) {
    new Relay(settings, req, res, next).start();
  };
}

function toSettings(module: unknown, options: unknown): Settings {
  const checked = checkObject('offload()', options) as OffloadOptions;
  checkKnownKeys('offload()', checked, OPTIONS);
  const inline = toBoolean('offload() inline', checked.inline, false);
  let runner: TaskRunner | undefined = inlineRunner;
  if (!inline) {
    runner = asRunner(checked.pool);
    if (!runner) throw invalidOption('offload() pool must be a pool from createPool() (or set inline: true)');
  }
  const kind = checked.kind ?? 'auto';
  if (!KINDS.includes(kind)) throw invalidOption(`offload() kind must be one of ${KINDS.join(', ')} (got ${JSON.stringify(kind)})`);
  if (checked.forward !== undefined && typeof checked.forward !== 'function') throw invalidOption('offload() forward must be a function');
  return {
    module: toModuleUrl(module),
    runner,
    timeout: toDuration('offload() timeout', checked.timeout, DEFAULT_TIMEOUT),
    kind,
    abortGrace: toDuration('offload() abortGrace', checked.abortGrace, DEFAULT_ABORT_GRACE),
    highWaterMark: toSize('offload() highWaterMark', checked.highWaterMark, DEFAULT_HIGH_WATER_MARK),
    serverTiming: toBoolean('offload() serverTiming', checked.serverTiming, false),
    forward: checked.forward as Settings['forward'],
    spares: [],
  };
}

/**
 * A `file:` URL. Relative paths are refused: relative to what (the caller's
 * file, the working directory, this package) is exactly the ambiguity that
 * `new URL('./handler.js', import.meta.url)` removes.
 */
function toModuleUrl(module: unknown): string {
  let url: URL;
  if (module instanceof URL) url = module;
  else if (typeof module === 'string' && module.startsWith('file:')) url = new URL(module);
  else if (typeof module === 'string' && isAbsolute(module)) url = pathToFileURL(module);
  else {
    throw invalidOption(
      `offload() module must be a file: URL or an absolute path, e.g. new URL('./handler.js', import.meta.url) (got ${JSON.stringify(String(module))})`,
    );
  }
  if (url.protocol !== 'file:') throw invalidOption(`offload() module must be a file: URL (got ${url.href})`);
  if (!existsSync(fileURLToPath(url))) throw invalidOption(`offload() module ${url.href} does not exist`);
  return url.href;
}

/** One request's trip to the handler and back. */
class Relay implements TaskListener {
  /** The task's id, given by the runner. */
  private id = 0;
  /** The request's slots (CREDIT, STATE, THREAD, WINDOW, TASK_END): taken once the request is accepted. */
  private credit!: Int32Array;
  /** The ring the worker's thread lent the response, with its first piece through one; given back on release(). */
  private ring: SharedArrayBuffer | undefined;
  /** Carries a streamed request body to the handler. */
  private bodyPort: MessagePort | undefined;
  /** The response is over as far as this relay goes: completed, handed to next(err), destroyed or abandoned. */
  private ended = false;
  private settled = false;
  private cleaned = false;
  /** The response closed: the socket no longer reads the ring. */
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  /** Credit for chunks the response is still buffering; returned on 'drain'. */
  private owed = 0;
  private drainListened = false;
  /** Request body bytes posted and not yet consumed by the handler. */
  private unacknowledged = 0;
  /** While the body streams to the handler: the listeners on req that post it. */
  private bodyListeners: { data: (chunk: Buffer) => void; end: () => void; close: () => void } | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly next: (err?: unknown) => void,
  ) {}

  start(): void {
    const { settings, req, res } = this;
    const refused = settings.runner.admit();
    if (refused) {
      // Refused before the body is read: nothing is queued or buffered.
      this.next(refused);
      return;
    }
    const transfer: Transferable[] = [];
    let forwarded: unknown;
    if (settings.forward) {
      try {
        forwarded = settings.forward(req);
      } catch (err) {
        this.next(new ForwardError(err));
        return;
      }
    }
    const { body, bodyIsReqBody, streamBody, parsedBody } = this.takeBody(transfer);
    let context: Task['context'] = null;
    if (forwarded !== undefined || parsedBody !== undefined) {
      context = { forwarded, body: parsedBody };
      // Cloned here once to be sure it can be: failing inside the pool would
      // not be this request's clear error.
      try {
        structuredClone(context);
      } catch (err) {
        this.next(new ForwardError(err));
        return;
      }
    }
    let bodyPort: MessagePort | null = null;
    if (streamBody) {
      const { port1, port2 } = new MessageChannel();
      this.bodyPort = port1;
      bodyPort = port2;
      transfer.push(port2);
    }

    this.credit = takeCredit(settings);
    Atomics.store(this.credit, CREDIT, settings.highWaterMark);
    const peer = peerOf(req);
    const task: Task = {
      id: 0,
      module: settings.module,
      kind: settings.kind,
      head: {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        originalUrl: (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/',
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
        remoteAddress: peer.remoteAddress,
        remotePort: peer.remotePort,
        remoteFamily: peer.remoteFamily,
        localAddress: peer.localAddress,
        localPort: peer.localPort,
        encrypted: peer.encrypted,
      },
      responseHeaders: headerEntries(res),
      responseStatus: res.statusCode,
      body,
      bodyIsReqBody,
      bodyPort,
      rawTrailers: streamBody ? null : trailersOf(req),
      context,
      credit: this.credit.buffer as SharedArrayBuffer,
      enqueuedAt: now(),
      claim: 0,
    };

    res.once('close', () => this.onClose());
    if (settings.timeout > 0) this.timer = setTimeout(() => this.onTimeout(), settings.timeout);
    if (streamBody) this.streamBody();
    this.id = settings.runner.run(task, this.credit, transfer, this);
  }

  /**
   * The body as wait-for-body (or another reader) left it in `req.body`, or
   * what is already buffered, or else a stream. A large buffer is moved to
   * the worker, not copied: `req.body` is empty on this thread afterwards.
   */
  private takeBody(transfer: Transferable[]): { body: Uint8Array | null; bodyIsReqBody: boolean; streamBody: boolean; parsedBody: unknown } {
    const { req } = this;
    const current = (req as { body?: unknown }).body;
    if (current instanceof Uint8Array) {
      let body = current;
      if (body.byteLength < TRANSFER_THRESHOLD || body.byteOffset !== 0 || body.byteLength !== body.buffer.byteLength || !(body.buffer instanceof ArrayBuffer)) {
        body = new Uint8Array(body);
      }
      transfer.push(body.buffer as ArrayBuffer);
      return { body, bodyIsReqBody: true, streamBody: false, parsedBody: undefined };
    }
    // A parsed body (body-parser's JSON, say) is cloned as it is; its stream is spent.
    const parsedBody = current;
    // A request that announced no body (see hasBody()) has none, even though
    // its stream has not ended yet when middleware runs.
    if (req.readableEnded || !hasBody(req) || req.headers['content-length'] === '0') {
      return { body: null, bodyIsReqBody: false, streamBody: false, parsedBody };
    }
    if (req.complete) {
      // Everything already arrived: hand it over in one piece.
      const chunks: Buffer[] = [];
      for (let chunk: Buffer | null; (chunk = req.read() as Buffer | null) !== null; ) chunks.push(chunk);
      if (chunks.length === 0) return { body: null, bodyIsReqBody: false, streamBody: false, parsedBody };
      const body = new Uint8Array(Buffer.concat(chunks));
      transfer.push(body.buffer as ArrayBuffer);
      return { body, bodyIsReqBody: false, streamBody: false, parsedBody };
    }
    return { body: null, bodyIsReqBody: false, streamBody: true, parsedBody };
  }

  private streamBody(): void {
    const { req } = this;
    // Made here, not with every relay: most requests stream no body.
    this.bodyListeners = { data: (chunk) => this.onBodyData(chunk), end: () => this.onBodyEnd(), close: () => this.onBodyClose() };
    req.on('data', this.bodyListeners.data);
    req.once('end', this.bodyListeners.end);
    req.once('close', this.bodyListeners.close);
  }

  private onBodyData(chunk: Buffer): void {
    // Cloned when the chunk fills most of its backing store (chunks read from
    // the socket do): the bytes are copied into the worker's heap and this
    // thread allocates nothing. A small slice of a big buffer is copied out
    // and moved instead, since cloning copies the whole backing store.
    // (Moving the socket's own buffer leaves a detached husk whose memory
    // this thread's GC does not see: it piles up.)
    if (chunk.byteLength * 2 >= chunk.buffer.byteLength) {
      this.post({ type: 'body', chunk });
    } else {
      const copy = new Uint8Array(chunk);
      this.post({ type: 'body', chunk: copy }, [copy.buffer]);
    }
    this.unacknowledged += chunk.byteLength;
    if (this.unacknowledged >= this.settings.highWaterMark) this.req.pause();
  }

  private onBodyEnd(): void {
    // Node has read the trailers by the body's 'end'.
    const rawTrailers = trailersOf(this.req);
    this.post(rawTrailers ? { type: 'end', rawTrailers } : { type: 'end' });
  }

  /** The body stopped before its end: the client is gone, though the response may be over (a handler reading on after it answered). */
  private onBodyClose(): void {
    if (!this.req.complete) this.abandon();
  }

  private stopBody(): void {
    const listeners = this.bodyListeners;
    if (!listeners) return;
    this.bodyListeners = undefined;
    this.req.off('data', listeners.data);
    this.req.off('end', listeners.end);
    this.req.off('close', listeners.close);
    // Discard what the handler did not read, so the connection can be reused.
    if (!this.req.readableEnded) this.req.resume();
  }

  private post(message: BodyMessage, transfer: Transferable[] = []): void {
    this.bodyPort?.postMessage(message, transfer as never);
  }

  onMessage(message: WorkerMessage): void {
    // Kept even when the response is over, so that release() gives it back.
    if (message.type === 'data' && message.ring) this.ring = message.ring;
    // The body may still stream once the response is over.
    if (message.type === 'pull') {
      this.unacknowledged -= message.bytes;
      if (this.unacknowledged < this.settings.highWaterMark && this.req.isPaused()) this.req.resume();
      return;
    }
    if (message.type === 'discard') {
      this.stopBody();
      return;
    }
    if (this.ended) return;
    switch (message.type) {
      case 'data':
        this.onData(message);
        break;
      case 'error':
        this.end();
        this.stopBody();
        if (message.headSent || this.res.headersSent) this.truncate();
        else this.next(rebuildError(message.error));
        break;
      case 'interim':
        this.writeInterim(message.status, message.hints);
        break;
      case 'destroy':
        this.end();
        this.stopBody();
        this.truncate();
        break;
    }
  }

  private onData(message: Extract<WorkerMessage, { type: 'data' }>): void {
    const { res } = this;
    if (message.head) this.applyHead(message.head);
    const { chunk, encoding, offset } = message;
    if (chunk !== undefined || offset !== undefined) {
      let data: Buffer | string;
      if (offset !== undefined) data = Buffer.from(this.ring!, RING_OFFSET + offset, message.size);
      else if (typeof chunk === 'string') data = chunk;
      else data = Buffer.from(chunk!.buffer, chunk!.byteOffset, chunk!.byteLength);
      if (message.end) {
        if (message.trailers) this.addTrailers(message.trailers);
        res.end(data, encoding as BufferEncoding);
      } else if (res.write === nativeWrite) {
        // Credit comes back as each chunk leaves for the kernel, which keeps
        // the pipe full; memory held here stays within the window.
        const size = message.size;
        res.write(data, encoding ?? 'utf8', () => this.addCredit(size));
      } else {
        // A wrapped write (compression, say) may not call back: credit comes
        // back when it accepts the chunk, or on 'drain'. It may also keep the
        // chunk after that, while the ring space is filled again: it gets a copy.
        if (offset !== undefined) data = Buffer.from(data as Buffer);
        const flushed = encoding ? res.write(data, encoding) : res.write(data);
        this.returnCredit(message.size, flushed);
      }
    } else if (message.end) {
      if (message.trailers) this.addTrailers(message.trailers);
      res.end();
    } else if (message.head) {
      res.flushHeaders();
    }
    if (message.end) this.end();
  }

  /**
   * Node's HTTP/1 response takes the pairs as they are, repeats included;
   * HTTP/2's compatibility response takes an object only (repeats as arrays).
   */
  private addTrailers(trailers: [string, string][]): void {
    if (!isHttp2(this.req)) {
      this.res.addTrailers(trailers);
      return;
    }
    const byName: Record<string, string | string[]> = {};
    for (const [name, value] of trailers) {
      const key = name.toLowerCase();
      const had = byName[key];
      byName[key] = had === undefined ? value : [had].flat().concat(value);
    }
    this.res.addTrailers(byName);
  }

  private writeInterim(status: 100 | 102 | 103, hints: Record<string, string | string[]> | undefined): void {
    const res = this.res as ServerResponse & { writeProcessing?(): void };
    if (res.headersSent) return;
    if (status === 103) res.writeEarlyHints(hints!);
    else if (status === 100) res.writeContinue();
    // HTTP/2's compatibility response has no writeProcessing().
    else res.writeProcessing?.();
  }

  /** The worker's view of the headers replaces this response's (it started from them). */
  private applyHead(head: ResponseHead): void {
    const { res } = this;
    // Removing a framing header or Date is remembered, not only its absence
    // (see removedFraming()): what counts is what upstream and the handler
    // removed, not this clearing.
    const removed = removedFraming(res);
    const sendDate = res.sendDate;
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    for (const [name, value] of head.headers) res.setHeader(internName(name), value);
    // HTTP/2 frames every body itself.
    if (!isHttp2(this.req)) setRemovedFraming(res, removed | (head.removed ?? 0));
    res.sendDate = sendDate && head.sendDate !== false;
    if (this.settings.serverTiming) {
      const timing = `queue;dur=${head.queueWait.toFixed(2)}`;
      const existing = res.getHeader('server-timing');
      res.setHeader('Server-Timing', existing === undefined ? timing : `${[existing].flat().join(', ')}, ${timing}`);
    }
    res.statusCode = head.status;
    // HTTP/2 has no reason phrase (Node warns when one is set).
    if (head.message !== undefined && !isHttp2(this.req)) res.statusMessage = head.message;
  }

  /** For a wrapped write: credit comes back once it took the chunk (or, when it is buffering, on 'drain'). */
  private returnCredit(size: number, flushed: boolean): void {
    if (size === 0) return;
    if (flushed && this.owed === 0) {
      this.addCredit(size);
      return;
    }
    // One listener for the whole response, not a once() per wait: a wrapped
    // response (compression) may hand 'drain' listeners to a stream of its
    // own, from which once() never removes them.
    if (!this.drainListened) {
      this.drainListened = true;
      this.res.on('drain', () => this.payOwed());
    }
    this.owed += size;
  }

  private payOwed(): void {
    const owed = this.owed;
    if (owed === 0) return;
    this.owed = 0;
    this.addCredit(owed);
  }

  private addCredit(bytes: number): void {
    // Once the relay ended, the counter may already serve another request.
    if (this.ended) return;
    Atomics.add(this.credit, CREDIT, bytes);
    Atomics.notify(this.credit, CREDIT);
  }

  /**
   * Tells the handler its request is over: writes are dropped, a blocked
   * writer wakes up, req/res see 'aborted'/'close'. Called before end().
   */
  private signalAbort(): void {
    Atomics.store(this.credit, STATE, ABORTED);
    this.addCredit(ABORT_CREDIT);
    this.stopBody();
  }

  /** The response is over; the task may still run (see cleanup()). */
  private end(): void {
    this.ended = true;
    if (this.settled) this.cleanup();
  }

  /**
   * The task is over too. Until then the deadline holds and the body keeps
   * streaming: a handler may read on after it answered, and one whose
   * promise never settles has its thread replaced at the deadline.
   */
  private cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    clearTimeout(this.timer);
    this.stopBody();
    this.settings.runner.forget(this.id);
    this.bodyPort?.close();
    this.release();
  }

  /**
   * The request's SharedArrayBuffer is reused, and the ring given back to
   * its thread, once the task is over (the handler's side no longer touches
   * them) and the response closed (the socket no longer reads views of the
   * ring: they go out, or are dropped with the connection, before 'close').
   */
  private release(): void {
    if (!this.cleaned || !this.closed) return;
    returnCredit(this.settings, this.credit);
    if (this.ring) returnRing(this.ring);
  }

  private onClose(): void {
    this.closed = true;
    if (this.ended) {
      this.release();
      return;
    }
    // The client went away before the response ended.
    this.abandon();
  }

  /** The client is gone: the handler is told, and its thread replaced if it runs on past abortGrace. */
  private abandon(): void {
    if (this.graceTimer) return;
    this.signalAbort();
    this.end();
    if (!this.settled) this.graceTimer = setTimeout(() => this.terminate(), this.settings.abortGrace);
  }

  private onTimeout(): void {
    this.signalAbort();
    this.terminate();
    // The response went out: only its task was still running.
    if (this.ended) return;
    this.end();
    this.fail(new HandlerTimeoutError(this.settings.timeout));
  }

  /**
   * Stops a task that is still running by ending its thread. A task still
   * waiting for a thread has seen STATE and will not run. Until the task
   * settles, its thread cannot have been given another one.
   */
  private terminate(): void {
    if (this.settled) return;
    // Negative while the task waits in a lane, 0 inline.
    const threadId = Atomics.load(this.credit, THREAD);
    if (threadId > 0) this.settings.runner.terminate(threadId);
  }

  onSettled(err: unknown): void {
    this.settled = true;
    clearTimeout(this.graceTimer);
    if (this.ended) {
      this.cleanup();
    } else if (err !== undefined) {
      // The worker died (or the pool's threads cannot start). What it posted
      // before may still be on its way: let that arrive first.
      setImmediate(() => {
        if (!this.ended) {
          this.end();
          this.fail(err instanceof WorkerPoolError ? err : new WorkerCrashedError(err));
        }
      });
    }
    // Else the task succeeded, so its final message was posted: it ends the relay.
  }

  private fail(err: unknown): void {
    if (this.res.headersSent) this.truncate();
    else this.next(err);
  }

  /**
   * After headers the status cannot change: what was written goes out, then
   * the connection closes without the last chunk, so the client sees a
   * truncated, failed response rather than a complete-looking one. Over
   * HTTP/2 the request's stream is reset instead: the connection carries
   * other requests' streams.
   */
  private truncate(): void {
    if (isHttp2(this.req)) {
      (this.res as unknown as Http2ServerResponse).stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const socket = this.res.socket;
    if (socket && !socket.destroyed) socket.destroySoon();
    else this.res.destroy();
  }

}

const nativeWrite = ServerResponse.prototype.write;

/** A request through node:http2's compatibility API (its req/res stand in for node:http's). */
function isHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2;
}

/**
 * Whether a body follows the request's head. HTTP/1 says so in its headers
 * (Content-Length or Transfer-Encoding); an HTTP/2 request need not send
 * either: its stream ended with the headers, or DATA frames follow.
 */
function hasBody(req: IncomingMessage): boolean {
  return isHttp2(req) ? !(req as unknown as Http2ServerRequest).stream.endAfterHeaders : typeis.hasBody(req);
}

/** The request's trailers as Node read them (a chunked body's, or HTTP/2's), when it has any. */
function trailersOf(req: IncomingMessage): string[] | null {
  const raw = req.rawTrailers as string[] | undefined;
  return raw !== undefined && raw.length > 0 ? raw : null;
}

type Peer = Pick<RequestHead, 'remoteAddress' | 'remotePort' | 'remoteFamily' | 'localAddress' | 'localPort' | 'encrypted'>;
const PEER = Symbol('unblock.peer');

/**
 * The connection's addresses, read once per socket and kept on it: each of
 * the socket's getters asks its handle through several lookups V8 cannot
 * specialize (measured: a third of a µs per request), and a connection
 * serves many requests.
 */
function peerOf(req: IncomingMessage): Peer {
  const socket = req.socket as (typeof req.socket & { encrypted?: boolean; [PEER]?: Peer }) | null;
  if (!socket) return { remoteAddress: undefined, remotePort: undefined, remoteFamily: undefined, localAddress: undefined, localPort: undefined, encrypted: false };
  return (socket[PEER] ??= {
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    remoteFamily: socket.remoteFamily,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    encrypted: socket.encrypted === true,
  });
}

// Each request's SharedArrayBuffer is reused: allocating one per request
// costs the main thread more than reusing it, and each one alive slows every
// young-generation GC. 48 bytes each: up to 1024 spares (the rings live in
// the worker threads, see lendRing() in bridge.ts).
const MAX_SPARES = 1024;

function takeCredit(settings: Settings): Int32Array {
  let credit = settings.spares.pop();
  if (!credit) {
    credit = new Int32Array(new SharedArrayBuffer(SLOTS_BYTES));
    credit[WINDOW] = settings.highWaterMark;
  }
  Atomics.store(credit, STATE, RUNNING);
  Atomics.store(credit, THREAD, 0);
  Atomics.store(credit, TASK_END, TASK_RUNNING);
  return credit;
}

function returnCredit(settings: Settings, credit: Int32Array): void {
  if (settings.spares.length < MAX_SPARES) settings.spares.push(credit);
}

// Below this, copying is cheaper than detaching req.body from the main thread.
const TRANSFER_THRESHOLD = 64 * 1024;

/** The handler's error as an http-errors error: its status, code, expose, message (and headers) survive. */
function rebuildError(serialized: SerializedError): Error {
  const err = createError(serialized.status, serialized.message, {
    expose: serialized.expose,
    ...(serialized.code === undefined ? {} : { code: serialized.code }),
    ...(serialized.headers === undefined ? {} : { headers: serialized.headers }),
  });
  if (serialized.stack) err.stack = serialized.stack;
  return err;
}
