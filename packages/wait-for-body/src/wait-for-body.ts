import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import typeis from 'type-is';
import { BodyTooLargeError } from './errors.js';
import { toSettings, type WaitForBodyOptions } from './options.js';
import { readBody } from './read.js';

/** A connect-style middleware, as Express, Connect and `@unblock/chain` take it. */
export type WaitForBodyMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** A request once `waitForBody` has called `next()` after reading its body. */
export type RequestWithBody<Body extends Buffer | string = Buffer> = IncomingMessage & { body: Body };

// Symbol.for, so that two copies of this package in one app see each other's work.
const buffered = Symbol.for('@unblock/wait-for-body');

interface Marked {
  /** The decoded size of the body an earlier waitForBody read. */
  [buffered]?: number;
}

/**
 * Reads the whole request body before calling `next()`: then `req.body` is a
 * Buffer (or a string, with `encoding`) and, with `replay`, `req` can be read
 * again as a stream of it. Failures go to `next(err)` with a stable `code`.
 *
 * ```js
 * http.createServer(chain(waitForBody({ limit: '1mb' }), blockingApp));
 * ```
 */
export function waitForBody(options: WaitForBodyOptions = {}): WaitForBodyMiddleware {
  const settings = toSettings(options);
  return function waitForBody(req, res, next) {
    if (!hasBody(req) || !settings.accepts(req)) {
      next();
      return;
    }
    const size = (req as Marked)[buffered];
    if (size !== undefined) {
      // Read by an earlier waitForBody (app-level, say, with this one on a
      // route): the body is in memory; this one's limit still holds.
      if (size > settings.limit) process.nextTick(next, new BodyTooLargeError(settings.limit, size));
      else next();
      return;
    }
    // Read to its end by a parser that left its result (body-parser 1 and 2,
    // multer …): that req.body stands, as body-parser's parsers leave each
    // other's. A stream read by something that kept nothing is an error, below.
    if (req.readableEnded && (req as { body?: unknown }).body !== undefined) {
      next();
      return;
    }
    readBody(req, res, settings, next, ({ bytes, body, decoded }) => {
      if (decoded) {
        // The body is no longer compressed: say so to whoever reads it next.
        delete req.headers['content-encoding'];
        req.headers['content-length'] = String(bytes.length);
      }
      (req as Marked)[buffered] = bytes.length;
      (req as RequestWithBody<Buffer | string>).body = body;
      next();
    });
  };
}

/**
 * Whether a body follows the request's head. HTTP/1 says so in its headers
 * (Content-Length or Transfer-Encoding); an HTTP/2 request (node:http2's
 * compatibility API) need not send either: its stream ended with the
 * headers, or DATA frames follow.
 */
function hasBody(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 ? !(req as unknown as Http2ServerRequest).stream.endAfterHeaders : typeis.hasBody(req);
}
