import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, finished } from 'node:stream';

interface ReadableInternals {
  _readableState: { highWaterMark: number };
}

// Not in the typings, but exported by node:stream since streams2 and used by
// the readable-stream package: the state object behind every Readable.
const { ReadableState } = Readable as unknown as {
  ReadableState?: new (options: { highWaterMark: number; emitClose: boolean }, stream: Readable, isDuplex: boolean) => unknown;
};

/** False on a Node that would no longer expose it: `replay` is then refused when the middleware is built, not at request time. */
export const canReplay = typeof ReadableState === 'function';

/**
 * Makes `req` readable again, from its start, as a stream of `body`: a fresh
 * stream state holding the one buffer (no copy) and its end. body-parser,
 * multer, `for await (const chunk of req)` and `req.pipe()` then read it as
 * they would have read the socket. `done` is called once `req` can be read.
 *
 * The first read has to be entirely over first: it ends with an automatic
 * destroy (and the request's 'close' event) that would otherwise act on the
 * new state and take the replay for an aborted request.
 *
 * A replay nobody has started to read when the response finishes is dumped,
 * as Node dumps an unread body: until the request stream ends, Node keeps
 * the request (and its body) referenced from the connection, so an idle
 * kept-alive connection would otherwise hold its last body.
 */
export function replay(req: IncomingMessage, res: ServerResponse, body: Buffer, done: () => void): void {
  const cleanup = finished(req, { writable: false }, () => {
    cleanup();
    const internals = req as unknown as ReadableInternals;
    // 'close' was emitted once already, when the body was first read: a
    // second one would tell listeners the request closed twice.
    internals._readableState = new ReadableState!({ highWaterMark: internals._readableState.highWaterMark, emitClose: false }, req, false) as ReadableInternals['_readableState'];
    if (body.length > 0) req.push(body);
    req.push(null);
    res.once('finish', () => {
      if (req.readableFlowing === null && !req.readableDidRead) req.resume();
    });
    done();
  });
}
