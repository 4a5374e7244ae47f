import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { chain, type ChainItem } from '@unblock/chain';
import { serve, type Listening } from '../../../test/support/http.js';

/** POSTs `body` with fetch; `duplex: 'half'` lets the body be a stream. */
export function post(url: string, body: NonNullable<RequestInit['body']>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers, duplex: 'half' } as RequestInit);
}

/** Answers with what the middleware left in `req.body`: its kind, and its bytes as base64. */
export function echo(req: IncomingMessage, res: ServerResponse): void {
  const body = (req as { body?: unknown }).body;
  const kind = Buffer.isBuffer(body) ? 'buffer' : typeof body;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ kind, body: Buffer.isBuffer(body) ? body.toString('base64') : body }));
}

export interface Echoed {
  kind: string;
  body: string | undefined;
}

/** The body `echo` saw, decoded. */
export function bytesOf(echoed: Echoed): Buffer {
  return Buffer.from(echoed.body ?? '', 'base64');
}

/** An error middleware that records the error and answers at once `<status> <code>`, without waiting for the upload to end. */
export function recordErrors(): { errors: unknown[]; handler: (err: unknown, req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void } {
  const errors: unknown[] = [];
  return {
    errors,
    handler: (err, _req, res, _next) => {
      errors.push(err);
      const { status = 500, code = '' } = err as { status?: number; code?: string };
      res.statusCode = status;
      res.setHeader('content-type', 'text/plain');
      res.end(`${status} ${code}`);
    },
  };
}

/** Serves `chain(...items, errorRecorder)` and returns where, with the errors that reached the recorder. */
export async function serveChain(t: TestContext, ...items: ChainItem[]): Promise<Listening & { errors: unknown[] }> {
  const { errors, handler } = recordErrors();
  const listening = await serve(t, chain(...items, handler));
  return { ...listening, errors };
}

/** The `code` of each error. */
export function codes(errors: unknown[]): unknown[] {
  return errors.map((err) => (err as { code?: unknown }).code);
}

/**
 * A raw client connection, for what fetch will not send: lying
 * Content-Lengths, pipelined requests, bodies on GET, half-closes and resets.
 */
export class RawClient {
  readonly socket: Socket;
  private received = '';
  private waiters: Array<() => void> = [];
  /** Resolves when the server closed the connection (or reset it). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
      for (const wake of this.waiters.splice(0)) wake();
    });
    // EPIPE / ECONNRESET are what a test of a closing server expects to see.
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(t: TestContext, port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
      t.after(() => socket.destroy());
    });
  }

  /** Everything the server sent so far. */
  get text(): string {
    return this.received;
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(data, () => resolve()));
  }

  /** Waits until the server has sent `count` final responses (1xx not counted), or fails after `timeoutMs`. */
  async responses(count: number, timeoutMs = 5000): Promise<RawResponse[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = parseResponses(this.received);
      if (parsed.length >= count) return parsed;
      if (this.socket.destroyed) throw new Error(`connection closed after ${parsed.length} of ${count} responses:\n${this.received}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} responses, got:\n${this.received}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        this.waiters.push(wake);
        this.socket.once('close', wake);
      });
    }
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Final responses in `text`, each with a Content-Length body (what Node writes for `res.end(string)`). */
export function parseResponses(text: string): RawResponse[] {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const [statusLine = '', ...lines] = text.slice(at, headEnd).split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (text.length < headEnd + 4 + length) break;
    if (status >= 200) responses.push({ status, headers, body: text.slice(headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
  return responses;
}

/** A raw HTTP/1.1 request. `body` is sent as it is: the headers decide how it is framed. */
export function request(method: string, path: string, headers: Record<string, string | number>, body: string | Buffer = ''): Buffer {
  const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]);
}

export { eventually } from '../../../test/support/http.js';
