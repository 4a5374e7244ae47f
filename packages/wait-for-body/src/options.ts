import type { IncomingMessage, ServerResponse } from 'node:http';
import bytes from 'bytes';
import iconv from 'iconv-lite';
import ms from 'ms';
import typeis from 'type-is';
import { invalidOption } from './errors.js';
import { canReplay } from './replay.js';
import { DURATION_PATTERN, SIZE_PATTERN } from './schema.js';

export interface WaitForBodyOptions {
  /**
   * Largest body accepted, in bytes or as a string such as `"100kb"`. Applies
   * to the decoded body (so a compressed bomb stops here) and to the bytes on
   * the wire. Default `"100kb"`.
   */
  limit?: number | string;
  /**
   * Which requests to read, by Content-Type: a type such as `"json"`,
   * `"text/*"` or `"application/*+json"`, a list of those, or a function of
   * the request. Others pass through unread. Default: every request that has
   * a body.
   */
  type?: string | readonly string[] | ((req: IncomingMessage) => boolean);
  /** Decode gzip, deflate, br (and zstd where Node has it). When false, encoded bodies are refused with 415. Default `true`. */
  inflate?: boolean;
  /**
   * Called with the whole (decoded) body before `next()`. Throw, or return a
   * rejecting promise, to refuse the request (403, or the status of the error
   * thrown). `encoding` is the charset used for `req.body`, or `null` for a Buffer.
   */
  verify?: (req: IncomingMessage, res: ServerResponse, buf: Buffer, encoding: string | null) => unknown;
  /**
   * `false` leaves `req.body` a Buffer. `true` or a charset name makes it a
   * string, decoded with the charset the request declares, or else with this
   * one (`true` means `"utf-8"`). Default `false`.
   */
  encoding?: boolean | string;
  /** Time allowed for the whole body, in ms or as a string such as `"10s"`; a slower sender gets 408. Default `"30s"`. */
  timeout?: number | string;
  /** Leave `req` readable again, as a stream of the buffered body, for parsers that read it afterwards. Default `true`. */
  replay?: boolean;
  /**
   * After an error, at most this many further bytes of the upload are read
   * and thrown away, so that the connection can be kept alive; past it the
   * connection is closed (over HTTP/2, the request's stream). Default `"10mb"`.
   */
  drainLimit?: number | string;
}

/** The options, checked and with defaults applied. */
export interface Settings {
  readonly limit: number;
  readonly accepts: (req: IncomingMessage) => boolean;
  readonly inflate: boolean;
  readonly verify: WaitForBodyOptions['verify'];
  /** The charset to decode with when the request declares none, or null for a Buffer. */
  readonly defaultCharset: string | null;
  readonly timeout: number;
  readonly replay: boolean;
  readonly drainLimit: number;
}

const DEFAULT_LIMIT = '100kb';
// Long enough for 100kb over a poor mobile uplink; short enough that a
// stalled sender does not hold a socket for Node's 300 s requestTimeout.
const DEFAULT_TIMEOUT = '30s';
// Discarding costs bandwidth, not memory. Bodies up to this size still get
// their error response on a kept-alive connection, even from error handlers
// that wait for the request to end (finalhandler, Express).
const DEFAULT_DRAIN_LIMIT = '10mb';

const known = new Set(['limit', 'type', 'inflate', 'verify', 'encoding', 'timeout', 'replay', 'drainLimit']);

export function toSettings(options: WaitForBodyOptions): Settings {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalidOption(`waitForBody() takes an options object, got ${options === null ? 'null' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw invalidOption(`unknown waitForBody option "${key}" (known: ${[...known].join(', ')})`);
  }
  const { inflate = true, replay = true, verify, encoding = false } = options;
  if (typeof inflate !== 'boolean') throw invalidOption(`inflate must be a boolean, got ${typeof inflate}`);
  if (typeof replay !== 'boolean') throw invalidOption(`replay must be a boolean, got ${typeof replay}`);
  if (replay && !canReplay) throw invalidOption('replay needs stream.Readable.ReadableState, which this Node does not have: set replay: false');
  if (verify !== undefined && typeof verify !== 'function') throw invalidOption(`verify must be a function, got ${typeof verify}`);
  return {
    limit: toBytes('limit', options.limit ?? DEFAULT_LIMIT),
    accepts: toTypeFilter(options.type),
    inflate,
    verify,
    defaultCharset: toCharset(encoding),
    timeout: toDuration('timeout', options.timeout ?? DEFAULT_TIMEOUT),
    replay,
    drainLimit: toBytes('drainLimit', options.drainLimit ?? DEFAULT_DRAIN_LIMIT),
  };
}

const sizePattern = new RegExp(SIZE_PATTERN);
const durationPattern = new RegExp(DURATION_PATTERN);

function toBytes(name: string, value: unknown): number {
  // bytes.parse() reads "10 bananas" as 10 and answers null for what it
  // cannot read at all, which raw-body takes as "no limit": only strings of
  // the documented form get to it.
  const parsed = typeof value === 'number' ? value : typeof value === 'string' && sizePattern.test(value) ? bytes.parse(value) : null;
  if (parsed === null || !Number.isSafeInteger(parsed) || parsed < 0) {
    throw invalidOption(`${name} must be a whole number of bytes ≥ 0 or a size such as "100kb", got ${JSON.stringify(value) ?? typeof value}`);
  }
  return parsed;
}

function toDuration(name: string, value: unknown): number {
  const parsed = typeof value === 'number' ? value : typeof value === 'string' && durationPattern.test(value) ? ms(value as ms.StringValue) : undefined;
  // setTimeout() cannot wait longer than 2^31-1 ms: it would fire at once.
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed <= 0 || parsed > 2 ** 31 - 1) {
    throw invalidOption(`${name} must be a number of milliseconds > 0 or a duration such as "10s", got ${JSON.stringify(value) ?? typeof value}`);
  }
  return parsed;
}

function toCharset(encoding: unknown): string | null {
  if (encoding === false) return null;
  if (encoding === true) return 'utf-8';
  if (typeof encoding === 'string' && iconv.encodingExists(encoding)) return encoding.toLowerCase();
  throw invalidOption(`encoding must be a boolean or a charset name that iconv-lite knows, got ${JSON.stringify(encoding) ?? typeof encoding}`);
}

function toTypeFilter(type: unknown): (req: IncomingMessage) => boolean {
  if (type === undefined) return () => true;
  if (typeof type === 'function') return (req) => Boolean(type(req));
  const types = typeof type === 'string' ? [type] : type;
  if (!Array.isArray(types) || types.length === 0 || !types.every((t) => typeof t === 'string' && typeis.normalize(t) !== false)) {
    throw invalidOption(`type must be a media type such as "application/json", "json" or "text/*", a non-empty list of those, or a function; got ${JSON.stringify(type) ?? typeof type}`);
  }
  const list = [...(types as string[])];
  // Its Content-Type alone: whether there is a body at all was decided before (typeis(req) asks HTTP/1's headers).
  return (req) => typeis.is(req.headers['content-type'] ?? '', list) !== false;
}
