// One configured server on node:http (node:https with `tls`): safe timeouts,
// the health endpoint, request lines, and a drain that loses no request.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { Server as NetServer } from 'node:net';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { PoolStats, ServerConfig, TlsConfig } from '@unblock/config';
import { TlsError } from './errors.js';
import { accessLogFormat, createLogger } from './log.js';

export interface ServeOptions {
  config: ServerConfig;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Pool figures for the health endpoint, by pool name. */
  poolHealth: () => Record<string, PoolStats>;
}

export interface RunningServer {
  readonly server: Server | HttpsServer;
  readonly config: ServerConfig;
  listen(): Promise<AddressInfo>;
  /**
   * Stops accepting, lets in-flight requests finish and idle keep-alive
   * connections expire, and after `timeout` ms destroys what is left.
   * Resolves with the number of requests cut off.
   */
  drain(timeout: number): Promise<number>;
}

// The event-loop delay over the last few seconds, shared by every server of the process.
let loopDelay: { histogram: IntervalHistogram; last: { mean: number; p99: number; max: number } } | undefined;
const LOOP_WINDOW_MS = 5_000;
const LOOP_RESOLUTION_MS = 10;

function eventLoopDelay(): { mean: number; p99: number; max: number } {
  if (loopDelay === undefined) {
    const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    histogram.enable();
    loopDelay = { histogram, last: { mean: 0, p99: 0, max: 0 } };
    setInterval(() => {
      loopDelay!.last = read(histogram);
      histogram.reset();
    }, LOOP_WINDOW_MS).unref();
  }
  // Until a window has passed, report what there is.
  return loopDelay.last.max > 0 ? loopDelay.last : read(loopDelay.histogram);
}

function read(histogram: IntervalHistogram): { mean: number; p99: number; max: number } {
  // The histogram records the time between two ticks of its timer: the
  // delay is what exceeds the timer's own interval.
  const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, Math.round(ns / 1e4) / 100 - LOOP_RESOLUTION_MS) : 0);
  return { mean: ms(histogram.mean), p99: ms(histogram.percentile(99)), max: ms(histogram.max) };
}

export function serve({ config, handler, poolHealth }: ServeOptions): RunningServer {
  let draining = false;
  const active = new Set<ServerResponse>();
  const started = Date.now();
  const format = accessLogFormat(config.accessLog);
  const log = format === undefined ? undefined : createLogger(format, format === 'json' ? { server: config.name, pid: process.pid } : {});

  const options = {
    headersTimeout: config.headersTimeout,
    requestTimeout: config.requestTimeout,
    keepAliveTimeout: config.keepAliveTimeout,
    // Node checks the two timeouts above only this often (30 s by
    // default), which would let a slow client hold a socket far longer.
    // node:http takes whole milliseconds only.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.headersTimeout / 2))),
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    active.add(res);
    // Once draining, every response tells the client to open its next
    // request elsewhere, so no request is sent on a closing connection.
    if (draining) res.setHeader('connection', 'close');
    const start = performance.now();
    res.once('close', () => {
      active.delete(res);
      if (log !== undefined) logRequest(log, req, res, performance.now() - start);
    });
    if (config.health !== undefined && isHealthRequest(req, config.health)) {
      health(res, draining, started, poolHealth());
      return;
    }
    handler(req, res);
  };
  const server = config.tls ? createHttpsServer({ ...options, ...readTls(config.tls) }, listener) : createServer(options, listener);
  // Every socket (the TCP ones, under TLS), upgraded ones included (http
  // stops tracking those), so that the end of a drain leaves nothing open.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  return {
    server,
    config,
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async drain(timeout) {
      draining = true;
      for (const res of active) if (!res.headersSent) res.setHeader('connection', 'close');
      // net.Server's close, not http.Server's: the latter also closes idle
      // keep-alive connections at once, racing a client that is sending its
      // next request on one of them. Left alone, they expire after
      // keepAliveTimeout, which the client was told (Keep-Alive: timeout=N)
      // and stops reusing them before.
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeout);
      });
      const outcome = await Promise.race([closed, expired]);
      clearTimeout(timer);
      if (outcome !== 'timeout') return 0;
      const cut = active.size;
      for (const socket of sockets) socket.destroy();
      await closed;
      return cut;
    },
  };
}

/**
 * A server's key and certificates, read from their files now: each worker
 * reads them when it starts, so a reload (SIGHUP) serves renewed ones. A
 * file that cannot be read, a key that is not the certificate's or a wrong
 * passphrase throws here, naming the setting, before the server listens (and
 * in `unblock check`), not at the first connection.
 */
export function readTls(tls: TlsConfig): SecureContextOptions {
  const { path } = tls;
  const read = (key: 'key' | 'cert', file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TlsError(`${path}.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
  };
  const options: SecureContextOptions = { key: read('key', tls.key), cert: read('cert', tls.cert) };
  if (tls.passphrase !== undefined) options.passphrase = tls.passphrase;
  try {
    createSecureContext(options);
  } catch (err) {
    throw new TlsError(`${path}: ${(err as Error).message}`, { cause: err });
  }
  return options;
}

function isHealthRequest(req: IncomingMessage, path: string): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const url = req.url ?? '/';
  const end = url.search(/[?#]/);
  return (end === -1 ? url : url.slice(0, end)) === path;
}

function health(res: ServerResponse, draining: boolean, started: number, pools: Record<string, PoolStats>): void {
  const shedding = Object.values(pools).some((pool) => pool.shedding === true);
  const status = draining ? 'draining' : shedding ? 'shedding' : 'ok';
  const body = JSON.stringify({
    status,
    pid: process.pid,
    uptime: Math.round((Date.now() - started) / 1000),
    eventLoopDelay: eventLoopDelay(),
    pools,
  });
  res.writeHead(status === 'ok' ? 200 : 503, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function logRequest(log: ReturnType<typeof createLogger>, req: IncomingMessage, res: ServerResponse, duration: number): void {
  const ms = Math.round(duration * 10) / 10;
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
  // A response closed before it finished was cut off (client gone, error after headers).
  const status = res.writableFinished ? res.statusCode : 0;
  const queueWait = queueWaitOf(res);
  if (log.format === 'json') log.info('request', { method: req.method, url, status, duration: ms, queueWait });
  else log.info(`${req.method} ${url} ${status === 0 ? 'aborted' : status} ${ms}ms${queueWait === undefined ? '' : ` (queued ${queueWait}ms)`}`);
}

/** The pool queue wait an offload step with `serverTiming: true` reported in Server-Timing (`queue;dur=<ms>`). */
function queueWaitOf(res: ServerResponse): number | undefined {
  const header = res.getHeader('server-timing');
  const match = /(?:^|,)\s*queue;dur=([\d.]+)/.exec([header ?? ''].flat().join(', '));
  return match ? Number(match[1]) : undefined;
}
