import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen } from './listen.js';

export interface DiscardLimits {
  /** The declared Content-Length, or null for a chunked body. */
  declared: number | null;
  drainLimit: number;
  /** How long the rest of the upload may take to arrive, in ms. */
  timeout: number;
  /** False when the connection must close whatever is left (a timed-out sender, a 100-continue never answered). */
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
