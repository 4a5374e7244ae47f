// Loading the user's module inside the worker, and turning its default export
// into one node-style `(req, res)` handler whatever its kind.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BadHandlerError, BadResponseError, BadUrlError, ModuleLoadError } from './errors.js';
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
  const url = requestUrl(req);
  const headers = new Headers();
  const raw = req.rawHeaders;
  // HTTP/2's pseudo-headers (`:path`, `:authority` …) are already in the URL,
  // and Headers refuses their names. No HTTP/1 header name starts with `:`.
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.charCodeAt(0) !== COLON) headers.append(raw[i]!, raw[i + 1]!);
  }
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const init = {
    method: req.method!,
    headers,
    signal,
    ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: 'half' } : {}),
  } as RequestInit;
  try {
    return new Request(url, init);
  } catch (err) {
    // The authority has the right shape yet is no host: a port over 65535,
    // an IPv4 address out of range, a malformed IPv6 one.
    if (!URL.canParse(url)) throw new BadUrlError('the host it names is not valid');
    throw err;
  }
}

const SLASH = 0x2f;
const COLON = 0x3a;
/**
 * A host and optional port as RFC 3986 writes them: a name or IPv4 address,
 * or a bracketed IPv6 one; no userinfo. Checked before the authority goes in
 * front of the path: a `/`, `?`, `#`, `@` or `\` in it would move where the
 * path starts, and the handler would route on another path than `req.url`.
 */
const AUTHORITY = /^(?:[\w.~!$&'()*+,;=%-]+|\[[\dA-Fa-f:.]+\])(?::\d*)?$/;
/** An absolute-form target: scheme, authority, then path and query (or nothing). */
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)(.*)$/i;

/**
 * The Request's URL: absolute, as fetch frameworks (Hono and the like) need,
 * and with the mount-relative `req.url` as its path, so that an app offloaded
 * under `/api` routes on what follows `/api`, as an Express sub-app would.
 * Scheme and authority are those of the target URI (RFC 9112 §3.3, RFC 9113
 * §8.3.1), as @hono/node-server builds them too:
 * - an absolute-form target (`GET http://example.com/a HTTP/1.1`, proxy
 *   style) gives both, and the Host header is ignored; routers leave the
 *   mount path out after its host;
 * - otherwise the scheme is HTTP/2's `:scheme`, else `https` over TLS and
 *   `http` without; the authority is HTTP/2's `:authority`, else the Host
 *   header, else (HTTP/1.0 without Host) the local address and port;
 * - `*` (`OPTIONS *`) has an empty path: the URL ends in `/`.
 * What cannot make such a URL is answered 400 `UNBLOCK_ERR_POOL_BAD_URL`, as
 * RFC 9112 §3.2 asks for an invalid Host, rather than given to the handler
 * with another host or path than the client sent.
 */
function requestUrl(req: IncomingMessage): string {
  const target = req.url ?? '/';
  let path = target;
  let scheme: string | undefined;
  let authority: string | undefined;
  let source = 'the Host header';
  if (target.charCodeAt(0) !== SLASH) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute) {
      scheme = absolute[1]!.toLowerCase();
      authority = absolute[2]!;
      source = 'the request target';
      const rest = absolute[3]!;
      path = rest.charCodeAt(0) === SLASH ? rest : `/${rest}`;
    } else if (target === '*' || target === '') {
      path = '/';
    } else {
      throw new BadUrlError('the request target is neither a path, an absolute http(s) URL nor *');
    }
  }
  if (req.httpVersionMajor === 2 && authority === undefined) {
    const claimed = req.headers[':scheme'];
    if (claimed === 'http' || claimed === 'https') scheme = claimed;
    else if (claimed !== undefined) throw new BadUrlError('the :scheme pseudo-header is neither http nor https');
    const given = req.headers[':authority'];
    if (typeof given === 'string' && given !== '') {
      authority = given;
      source = 'the :authority pseudo-header';
    }
  }
  const socket = req.socket as { encrypted?: boolean; localAddress?: string; localPort?: number };
  scheme ??= socket.encrypted ? 'https' : 'http';
  // An empty Host is what a client sends for a URI without authority: none given.
  authority ??= req.headers.host || undefined;
  if (authority === undefined) authority = localAuthority(socket);
  else if (!AUTHORITY.test(authority)) throw new BadUrlError(`${source} is not a valid host`);
  return `${scheme}://${authority}${path}`;
}

/** The address the request came in on, as a URL's authority. */
function localAuthority(socket: { localAddress?: string; localPort?: number }): string {
  const address = socket.localAddress;
  if (!address) return 'localhost';
  let host = address;
  if (address.includes(':')) {
    // IPv6 in brackets, without the zone (`%eth0`) a URL cannot carry.
    const zone = address.indexOf('%');
    host = `[${zone === -1 ? address : address.slice(0, zone)}]`;
  }
  return socket.localPort === undefined ? host : `${host}:${socket.localPort}`;
}
