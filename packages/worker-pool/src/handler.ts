// Loading the user's module inside the worker, and turning its default export
// into one node-style `(req, res)` handler whatever its kind.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BadHandlerError, BadResponseError, ModuleLoadError } from './errors.js';
import type { HandlerKind } from './protocol.js';

export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;
type FetchHandler = (request: Request, forwarded?: unknown) => unknown;

interface KoaLike {
  callback(): NodeHandler;
  use(...args: unknown[]): unknown;
}

const modules = new Map<string, Promise<Record<string, unknown>>>();
const handlers = new Map<string, Promise<NodeHandler>>();
/**
 * Handlers done loading, by kind then module: a request for one of them
 * starts without waiting for a promise, nor building a key of its own.
 */
const ready = new Map<HandlerKind, Map<string, NodeHandler>>();

/**
 * The handler for `module`, imported and `init()`-ed once per thread: the
 * handler itself once loaded, else a promise of it. A failed load is not
 * cached, so a transient `init()` failure can recover on the next request.
 */
export function loadHandler(module: string, kind: HandlerKind): NodeHandler | Promise<NodeHandler> {
  const loaded = ready.get(kind)?.get(module);
  if (loaded) return loaded;
  const key = `${kind} ${module}`;
  let handler = handlers.get(key);
  if (!handler) {
    handler = importModule(module).then((exports) => adapt(module, exports.default, kind));
    handlers.set(key, handler);
    handler.then(
      (adapted) => {
        let byModule = ready.get(kind);
        if (!byModule) ready.set(kind, (byModule = new Map()));
        byModule.set(module, adapted);
      },
      () => handlers.delete(key),
    );
  }
  return handler;
}

function importModule(module: string): Promise<Record<string, unknown>> {
  let loaded = modules.get(module);
  if (!loaded) {
    loaded = (async () => {
      try {
        const exports = (await import(module)) as Record<string, unknown>;
        if (typeof exports.init === 'function') await exports.init();
        return exports;
      } catch (err) {
        throw new ModuleLoadError(module, err);
      }
    })();
    modules.set(module, loaded);
    loaded.catch(() => modules.delete(module));
  }
  return loaded;
}

/**
 * `auto` detection, in this order:
 * 1. an object or function with `callback()` and `use()` methods is a Koa app;
 * 2. a function of exactly one declared parameter is fetch-style `(request) => Response`;
 * 3. any other function is node-style `(req, res)` (Express and Connect apps declare three);
 * 4. an object with a `fetch()` method (a Hono app, say) is fetch-style.
 */
export function detectKind(value: unknown): Exclude<HandlerKind, 'auto'> | undefined {
  if (isKoa(value)) return 'koa';
  if (typeof value === 'function') return value.length === 1 ? 'fetch' : 'node';
  if (typeof value === 'object' && value !== null && typeof (value as { fetch?: unknown }).fetch === 'function') return 'fetch';
  return undefined;
}

function adapt(module: string, value: unknown, requested: HandlerKind): NodeHandler {
  const kind = requested === 'auto' ? detectKind(value) : requested;
  switch (kind) {
    case 'koa':
      if (!isKoa(value)) throw new BadHandlerError(module, 'is not a Koa app (no callback() and use() methods)');
      return value.callback();
    case 'fetch': {
      if (typeof value === 'function') return fromFetch(value as FetchHandler);
      const fetch = (value as { fetch?: unknown } | null)?.fetch;
      if (typeof fetch !== 'function') throw new BadHandlerError(module, 'is neither a function nor an object with a fetch() method');
      return fromFetch(fetch.bind(value) as FetchHandler);
    }
    case 'node':
      if (typeof value !== 'function') throw new BadHandlerError(module, 'is not a (req, res) function');
      return value as NodeHandler;
    default:
      throw new BadHandlerError(
        module,
        `is ${value === undefined ? 'missing' : typeof value}: export a (req, res) handler, an Express/Connect/Koa app, or a fetch-style handler`,
      );
  }
}

function isKoa(value: unknown): value is KoaLike {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as Partial<KoaLike>).callback === 'function' &&
    typeof (value as Partial<KoaLike>).use === 'function'
  );
}

/** A fetch-style handler as a node-style one. The forwarded value is its second argument (Hono's `env`). */
function fromFetch(fetch: FetchHandler): NodeHandler {
  return async (req, res) => {
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const response = await fetch(toRequest(req, controller.signal), (req as { forwarded?: unknown }).forwarded);
    if (!(response instanceof Response)) throw new BadResponseError(response);
    res.statusCode = response.status;
    if (response.statusText) res.statusMessage = response.statusText;
    for (const [name, value] of response.headers) {
      if (name !== 'set-cookie') res.setHeader(name, value);
    }
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) res.setHeader('set-cookie', cookies);
    if (!response.body) {
      res.end();
      return;
    }
    try {
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), res);
    } catch (err) {
      // The client went away: nothing to report, the response is already closed.
      if (!res.destroyed) throw err;
    }
  };
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const socket = req.socket as { encrypted?: boolean; localAddress?: string; localPort?: number };
  const host = req.headers.host ?? `${socket.localAddress}:${socket.localPort}`;
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(`${socket.encrypted ? 'https' : 'http'}://${host}${req.url}`, {
    method: req.method!,
    headers,
    signal,
    ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: 'half' } : {}),
  } as RequestInit);
}
