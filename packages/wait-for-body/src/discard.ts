import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen } from './listen.js';

export interface DiscardLimits {
  /** The declared Content-Length, or null for a chunked body. */
  declared: number | null;
  drainLimit: number;
  /** How long the rest of the upload may take to arrive, in ms. */
  timeout: number;
  /** False when the connection must close whatever is left (a 100-continue never answered). */
  reusable: boolean;
}

/**
 * What happens to the rest of an upload once it will not be used: it is read
 * and thrown away, never buffered. When the whole body fits in `drainLimit`
 * the connection stays alive (the next request on it starts where this body
 * ends). Otherwise the response says `Connection: close`, and the rest is
 * still read, as a lingering close, so that the client sees the response
 * instead of a reset while it is still sending. Past `drainLimit` bytes or
 * `timeout` the socket is destroyed: a client that keeps sending cannot hold
 * it.
 */
export function discardRest(req: IncomingMessage, res: ServerResponse, limits: DiscardLimits): void {
  if (req.complete) {
    // Only what Node has already buffered is left: let it go.
    req.resume();
    return;
  }
  const { declared, drainLimit, timeout, reusable } = limits;
  // Over HTTP/2 the connection carries other requests' streams: only this
  // stream ends (Node would drop the header, with a warning).
  if (!(reusable && declared !== null && declared <= drainLimit) && !res.headersSent && req.httpVersionMajor < 2) {
    res.setHeader('Connection', 'close');
  }
  let discarded = 0;
  const closeConnection = () => {
    stop();
    // Over HTTP/2, req.socket stands for the request's stream: this resets the stream alone.
    req.socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > drainLimit) closeConnection();
  };
  const timer = setTimeout(closeConnection, timeout);
  // A discard never keeps the process alive on its own: the socket does, if anything.
  timer.unref();
  const stop = () => {
    clearTimeout(timer);
    stopListening();
  };
  const stopListening = listen(req, { data: onData, end: stop, close: stop });
  req.resume();
}

/**
 * What happens to the rest of an upload whose sender ran out of time: nothing
 * of it is worth waiting for. Over HTTP/1 the request is ended here and Node's
 * parser drops whatever more arrives, so that an error handler that waits for
 * the request to end before it answers (finalhandler, at the end of Express,
 * Connect and `@unblock/chain`) answers at once. The response says
 * `Connection: close` and the connection ends with it; one still open
 * `timeout` later is destroyed.
 */
export function abandonRest(req: IncomingMessage, res: ServerResponse, limits: DiscardLimits): void {
  // An HTTP/2 request is fed by Node's listeners on its stream, which would
  // fail on a request ended under them: there the rest is discarded.
  if (req.complete || req.httpVersionMajor >= 2) {
    discardRest(req, res, { ...limits, reusable: false });
    return;
  }
  if (!res.headersSent) res.setHeader('Connection', 'close');
  // The flag Node's server sets on a body nobody read once the response is
  // sent (IncomingMessage#_dump): its parser passes no more of the body on,
  // where a chunk pushed after the end would fail the request.
  (req as IncomingMessage & { _dumped: boolean })._dumped = true;
  // Complete and ended is what on-finished, and so finalhandler, takes for a
  // finished request, whether it looks before the end or after (an ended
  // HTTP/2 request says complete too). It also keeps Node from taking the
  // early end for an abort, which would destroy the socket before the
  // response is written.
  req.complete = true;
  req.push(null);
  req.resume();
  const { socket } = req;
  // Whatever the response says (Koa removes every header on an error), the
  // connection ends with it.
  res.once('finish', () => socket.end());
  const timer = setTimeout(() => socket.destroy(), limits.timeout);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
