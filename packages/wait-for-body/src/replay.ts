import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, finished } from 'node:stream';

interface StateOptions {
  highWaterMark: number;
  autoDestroy: boolean;
  emitClose: boolean;
}

interface ReadableInternals {
  _readableState: StateOptions;
}

// Not in the typings, but exported by node:stream since streams2 and used by
// the readable-stream package: the state object behind every Readable.
const { ReadableState } = Readable as unknown as {
  ReadableState?: new (options: StateOptions, stream: Readable, isDuplex: boolean) => StateOptions;
};

/** False on a Node that would no longer expose it: `replay` is then refused when the middleware is built, not at request time. */
export const canReplay = typeof ReadableState === 'function';

/**
 * Makes `req` readable again, from its start, as a stream of `body`: a fresh
 * stream state holding the one buffer (no copy) and its end. body-parser,
 * multer, `for await (const chunk of req)` and `req.pipe()` then read it as
 * they would have read the socket. `done` is called once `req` can be read.
 *
 * The first read ends with an automatic destroy (and the request's 'close'
 * event), which must not act on the new state: it would take the replay for
 * an aborted request. Called from within the request's 'end' event (the body
 * was read straight from `req`), that destroy is still to come and is called
 * off, so the request's one 'close' is the replay's; otherwise (the body came
 * through a decompressor) it is waited for.
 *
 * A replay nobody has started to read when the response finishes is dumped,
 * as Node dumps an unread body: until the request stream ends, Node keeps
 * the request (and its body) referenced from the connection, so an idle
 * kept-alive connection would otherwise hold its last body.
 */
export function replay(req: IncomingMessage, res: ServerResponse, body: Buffer, done: () => void): void {
  const internals = req as unknown as ReadableInternals;
  const first = internals._readableState;
  const { highWaterMark, autoDestroy } = first;
  const start = (emitClose: boolean) => {
    internals._readableState = new ReadableState!({ highWaterMark, autoDestroy, emitClose }, req, false);
    if (body.length > 0) req.push(body);
    req.push(null);
    res.once('finish', () => {
      if (req.readableFlowing === null && !req.readableDidRead) req.resume();
    });
    done();
  };
  if (!req.destroyed) {
    first.autoDestroy = false;
    start(autoDestroy && first.emitClose);
    return;
  }
  const cleanup = finished(req, { writable: false }, () => {
    cleanup();
    // 'close' was emitted once already: a second one would tell listeners the request closed twice.
    start(false);
  });
}
