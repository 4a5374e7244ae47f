import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import contentType from 'content-type';
import iconv from 'iconv-lite';
import getRawBody from 'raw-body';
import { abandonRest, discardRest } from './discard.js';
import { listen } from './listen.js';
import {
  BodyAbortedError,
  BodyAlreadyReadError,
  BodyInflateError,
  BodyLengthMismatchError,
  BodyStreamEncodingError,
  BodyTimeoutError,
  BodyTooLargeError,
  BodyVerifyError,
  UnsupportedCharsetError,
  UnsupportedContentEncodingError,
  type BodyError,
} from './errors.js';
import type { Settings } from './options.js';
import { replay } from './replay.js';

/** What `readBody` hands over: the decoded bytes, and `req.body` made of them. */
export interface ReadResult {
  bytes: Buffer;
  body: Buffer | string;
  /** The body was decompressed: the request headers no longer describe it. */
  decoded: boolean;
}

type Next = (err?: unknown) => void;

/**
 * Reads the whole body of `req` within the limits of `settings`, then calls
 * `onBody`; or passes an error to `next`, after which the rest of the upload
 * is discarded, or abandoned after a timeout (see discard.ts). Errors always
 * reach `next` asynchronously.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, settings: Settings, next: Next, onBody: (result: ReadResult) => void): void {
  const declared = declaredLength(req);
  let settled = false;
  let continueUnanswered = awaitsContinue(res);

  const fail = (err: BodyError) => {
    settled = true;
    // Deferred, so that it comes after whatever the event that failed is
    // still running: raw-body's own listener or a pipe may pause the
    // request after us in the same 'data' event, and the discard must win.
    process.nextTick(() => {
      if (ownsTheRest(err)) {
        const disposeOfRest = err instanceof BodyTimeoutError ? abandonRest : discardRest;
        disposeOfRest(req, res, { declared, drainLimit: settings.drainLimit, timeout: settings.timeout, reusable: !continueUnanswered });
      }
      next(err);
    });
  };

  if (req.readableEncoding !== null) return fail(new BodyStreamEncodingError());
  if (req.readableEnded || req.readableDidRead) return fail(new BodyAlreadyReadError());
  if (req.destroyed) return fail(abortError(req, declared, 0));

  const encoding = (req.headers['content-encoding'] || 'identity').trim().toLowerCase();
  const createDecompressor = encoding === 'identity' ? undefined : decompressors.get(encoding);
  if (encoding !== 'identity' && (!settings.inflate || createDecompressor === undefined)) return fail(new UnsupportedContentEncodingError(encoding));
  const charset = settings.defaultCharset === null ? null : (requestCharset(req) ?? settings.defaultCharset);
  if (charset !== null && !iconv.encodingExists(charset)) return fail(new UnsupportedCharsetError(charset));
  // A body that arrived whole, as most small ones do with their headers, is
  // already in Node's buffer, unread: there is no client left to time or
  // watch, and its size on the wire is known before decoding.
  const arrived = req.complete;
  // The limit holds on the wire too: concatenated empty gzip members can
  // stream forever while decoding to nothing.
  if (declared !== null && declared > settings.limit) return fail(new BodyTooLargeError(settings.limit, declared));
  if (arrived && req.readableLength > settings.limit) return fail(new BodyTooLargeError(settings.limit, req.readableLength));

  // With a 'checkContinue' listener on the server, Node leaves the interim
  // response to the application: the client sends nothing until it gets it.
  if (continueUnanswered) {
    res.writeContinue();
    continueUnanswered = false;
  }

  const decompressor = createDecompressor?.();
  let received = 0;
  const stop = () => {
    clearTimeout(timer);
    unwatch();
    stopReading();
    if (decompressor !== undefined) {
      req.unpipe(decompressor);
      // Data already in zlib's thread pool may still fail after raw-body stopped listening.
      decompressor.on('error', ignore);
      decompressor.destroy();
    }
  };
  const stopWith = (err: BodyError) => {
    if (settled) return;
    stop();
    fail(err);
  };
  const countWireBytes = (chunk: Buffer) => {
    received += chunk.length;
    if (received > settings.limit) stopWith(new BodyTooLargeError(settings.limit, received));
  };
  const onClose = () => {
    if (!req.complete) stopWith(abortError(req, declared, received));
  };
  const timer = arrived ? undefined : setTimeout(() => stopWith(new BodyTimeoutError(settings.timeout, received)), settings.timeout);
  const unwatch = arrived ? ignore : listen(req, { data: countWireBytes, close: onClose });
  if (decompressor !== undefined) req.pipe(decompressor);
  const onRead: ReadCallback = (err, bytes) => {
    if (settled) return;
    stop();
    if (err !== null) return fail(readError(err, req, settings.limit, declared, received, decompressor && encoding));
    settled = true;
    const body = charset === null ? bytes : iconv.decode(bytes, charset);
    verify(req, res, settings, bytes, charset, (rejected, reason) => {
      if (rejected) {
        next(new BodyVerifyError(reason));
        return;
      }
      const result = { bytes, body, decoded: decompressor !== undefined };
      if (settings.replay) replay(req, res, bytes, () => onBody(result));
      else onBody(result);
    });
  };
  const stopReading =
    decompressor === undefined && declared !== null
      ? readDeclared(req, declared, onRead)
      : startRawBody(decompressor ?? req, { limit: settings.limit, length: decompressor === undefined ? declared : null }, onRead);
}

/**
 * Whether the rest of the upload is this middleware's to discard after `err`.
 * Not when the client is gone (nothing left, and no response reaches it), nor
 * when another reader has the stream: it is theirs to finish.
 */
function ownsTheRest(err: BodyError): boolean {
  return !(err instanceof BodyAbortedError || err instanceof BodyLengthMismatchError || err instanceof BodyAlreadyReadError || err instanceof BodyStreamEncodingError);
}

/** Calls `verify` when there is one, then `done`: with `rejected` and the reason when it threw or rejected. */
function verify(req: IncomingMessage, res: ServerResponse, settings: Settings, bytes: Buffer, charset: string | null, done: (rejected: boolean, reason?: unknown) => void): void {
  if (settings.verify === undefined) return done(false);
  let result: unknown;
  try {
    result = settings.verify(req, res, bytes, charset);
  } catch (thrown) {
    return done(true, thrown);
  }
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    (result as PromiseLike<unknown>).then(
      () => done(false),
      (reason: unknown) => done(true, reason),
    );
  } else {
    done(false);
  }
}

type ReadCallback = (err: Error | null, bytes: Buffer) => void;

/**
 * Reads a body whose size Content-Length gives, uncompressed, into one buffer
 * of that size, copying each chunk in as it arrives; returns a function that
 * stops it. Each received chunk is garbage as soon as it is copied, and the
 * end makes no second copy: raw-body keeps every chunk and concatenates them
 * at the end, holding the body twice for a moment, which with many uploads
 * finishing together is half again as much memory (see README, Performance).
 * The limit was checked against Content-Length before, and Node's parser
 * never passes on more bytes than it declares. Errors carry raw-body's `type`,
 * so `readError` takes both readers' alike.
 */
function readDeclared(req: IncomingMessage, length: number, callback: ReadCallback): () => void {
  // Allocated with the first chunk, so that a request that sends nothing
  // costs nothing; its pages are only touched as bytes are copied in.
  let bytes: Buffer | undefined;
  let received = 0;
  const finish = (err: Error | null) => {
    stop();
    callback(err, bytes ?? Buffer.alloc(0));
  };
  const onData = (chunk: Buffer) => {
    if (received + chunk.length > length) {
      finish(sizeMismatch(length, received + chunk.length));
      return;
    }
    bytes ??= Buffer.allocUnsafe(length);
    chunk.copy(bytes, received);
    received += chunk.length;
  };
  const onEnd = () => {
    finish(received === length ? null : sizeMismatch(length, received));
  };
  const onClose = () => finish(Object.assign(new Error('request aborted'), { type: 'request.aborted' }));
  const stop = listen(req, { data: onData, end: onEnd, error: finish, close: onClose });
  return stop;
}

const sizeMismatch = (expected: number, received: number) => Object.assign(new Error('request size did not match content length'), { type: 'request.size.invalid', expected, received });

/**
 * Runs raw-body on `stream` and returns a function that stops it. raw-body
 * cannot be cancelled: its listeners are taken off the stream instead, and
 * its partial buffer goes with them. It adds one listener to each of these
 * events, or none when it fails before reading; on() appends, so each is the
 * last of its event right after the call.
 */
function startRawBody(stream: Readable, options: { limit: number; length: number | null }, callback: ReadCallback): () => void {
  const dataListeners = stream.listenerCount('data');
  getRawBody(stream, options, callback as (err: getRawBody.RawBodyError, body: Buffer) => void);
  if (stream.listenerCount('data') === dataListeners) return ignore;
  const added = rawBodyEvents.map((event) => [event, stream.listeners(event).at(-1) as (...args: unknown[]) => void] as const);
  return () => {
    for (const [event, listener] of added) stream.removeListener(event, listener);
  };
}

const rawBodyEvents = ['aborted', 'close', 'data', 'end', 'error'] as const;

/** Our error for what raw-body (or the stream it read) failed with. */
function readError(err: Error & { type?: string; expected?: number; received?: number }, req: IncomingMessage, limit: number, declared: number | null, received: number, encoding: string | undefined): BodyError {
  switch (err.type) {
    case 'entity.too.large':
      return new BodyTooLargeError(limit, err.received ?? received);
    case 'request.aborted':
      return abortError(req, declared, received);
    case 'request.size.invalid':
      return new BodyLengthMismatchError(err.expected ?? declared, err.received ?? received);
  }
  // Anything else came from the stream raw-body read: the decompressor, or the request itself.
  return encoding !== undefined ? new BodyInflateError(encoding, err) : abortError(req, declared, received);
}

/**
 * A request that ended early. A client that closed its sending side (FIN)
 * ended the body before Content-Length said (Node answers it 400 itself); a
 * reset connection is a client that went away.
 */
function abortError(req: IncomingMessage, declared: number | null, received: number): BodyError {
  return req.socket.readableEnded ? new BodyLengthMismatchError(declared, received) : new BodyAbortedError(received);
}

/** Content-Length, which Node has already checked to be digits; null for a chunked body. */
function declaredLength(req: IncomingMessage): number | null {
  const header = req.headers['content-length'];
  return header === undefined ? null : Number(header);
}

/** The request said `Expect: 100-continue` and nobody has answered it yet. */
function awaitsContinue(res: ServerResponse): boolean {
  // Node sets these two on the response when it parses the request (for
  // HTTP/1.1 only) and when `writeContinue()` is called; they are its own
  // record of the exchange, and there is no public one.
  const state = res as ServerResponse & { _expect_continue?: boolean; _sent100?: boolean };
  return state._expect_continue === true && state._sent100 !== true && !res.headersSent;
}

function requestCharset(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  return header === undefined ? undefined : contentType.parse(header).parameters.charset?.toLowerCase();
}

// By Content-Encoding. zstd arrived in Node 22.15 / 23.8; before, it is an unsupported encoding.
const decompressors = new Map<string, () => Transform>([
  ['gzip', zlib.createGunzip],
  ['x-gzip', zlib.createGunzip],
  ['deflate', zlib.createInflate],
  ['br', zlib.createBrotliDecompress],
]);
const createZstdDecompress = (zlib as { createZstdDecompress?: () => Transform }).createZstdDecompress;
if (createZstdDecompress !== undefined) decompressors.set('zstd', createZstdDecompress);

function ignore(): void {}
