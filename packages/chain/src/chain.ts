import { EventEmitter } from 'node:events';
import { createServer, Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import finalhandler from 'finalhandler';
import { AmbiguousPathError, BLOCKING_WARNING_CODE, EmptyRejectionError, ErrorAfterNextError, NextCalledTwiceError, invalidArgument } from './errors.js';
import { matchRoute, mountPath, resolvePath, routeUnits } from './mount.js';
import type { BlockingInfo, Chain, ChainItem, ChainOptions, Layer, MiddlewareItem, Next } from './types.js';

interface ChainLayer extends Layer {
  readonly units: readonly string[];
}

interface ChainInternals {
  stack: ChainLayer[];
  options: Required<Pick<ChainOptions, 'debug'>> & ChainOptions;
}

const internals = Symbol('unblock.chain');
type AnyChain = Chain<any, any> & { [internals]: ChainInternals };
type AnyFunction = (...args: any[]) => unknown;

/**
 * Builds a chain of middleware, error middleware and apps. The result is both
 * a request handler for `http.createServer` and a Connect-style middleware.
 * Its request and response types are the defaults unless given explicitly
 * (`chain<MyRequest>(...)`): they are never inferred from the items.
 *
 * ```js
 * const app = chain(logger, waitForBody(), myApp);
 * http.createServer(app).listen(3000);
 * ```
 */
export function chain<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  ...items: MiddlewareItem<NoInfer<Req>, NoInfer<Res>>[]
): Chain<Req, Res>;
export function chain<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  options: ChainOptions<Req, Res>,
  ...items: MiddlewareItem<NoInfer<Req>, NoInfer<Res>>[]
): Chain<Req, Res>;
export function chain<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  ...items: ChainItem<NoInfer<Req>, NoInfer<Res>>[]
): Chain<Req, Res>;
export function chain<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  options: ChainOptions<Req, Res>,
  ...items: ChainItem<NoInfer<Req>, NoInfer<Res>>[]
): Chain<Req, Res>;
export function chain(...args: unknown[]): Chain<any, any> {
  const options = isOptions(args[0]) ? validateOptions(args.shift() as ChainOptions) : { debug: false };
  const app = function app(req: IncomingMessage, res: ServerResponse, next?: Next): void {
    dispatch(app as unknown as AnyChain, req, res, next);
  } as unknown as AnyChain;
  Object.setPrototypeOf(app, chainPrototype);
  EventEmitter.call(app as unknown as EventEmitter);
  app.route = '/';
  app[internals] = { stack: [], options };
  app.use(...(args as ChainItem[]));
  return app;
}

/** True for a chain built by `chain()`. */
export function isChain(value: unknown): value is Chain<any, any> {
  return typeof value === 'function' && internals in value;
}

// A chain is a function, so it keeps Function.prototype (call, apply, bind)
// and gets the EventEmitter methods copied in, as Connect does.
const chainPrototype: object = Object.create(Function.prototype, {
  ...Object.getOwnPropertyDescriptors(EventEmitter.prototype),
  ...Object.getOwnPropertyDescriptors({
    use(this: AnyChain, ...args: unknown[]) {
      const path = typeof args[0] === 'string' ? mountPath(args.shift() as string) : '';
      const units = routeUnits(path);
      // As given, not as matched: Connect reports `/Admin` for `use('/Admin')`.
      const route = path || '/';
      for (const item of (args as unknown[]).flat(Infinity)) {
        // As in Connect, a mounted chain knows where it is mounted.
        if (isChain(item)) item.route = route;
        this[internals].stack.push(toLayer(item, units, route));
      }
      return this;
    },
    handle(this: AnyChain, req: IncomingMessage, res: ServerResponse, out?: Next) {
      dispatch(this, req, res, out);
    },
    listen(this: AnyChain, ...args: unknown[]) {
      const server = createServer(this);
      return server.listen(...(args as [number]));
    },
  }),
  stack: {
    get(this: AnyChain) {
      return this[internals].stack;
    },
  },
  constructor: { value: undefined },
});

function toLayer(item: unknown, units: string[], route: string): ChainLayer {
  let handle: AnyFunction;
  let name: string;
  if (item instanceof Server) {
    const listener = item.listeners('request')[0];
    if (typeof listener !== 'function') throw invalidArgument('an http.Server given to use() has no request listener');
    handle = listener as AnyFunction;
    name = listener.name || 'server';
  } else if (typeof item === 'function') {
    handle = item as AnyFunction;
    name = item.name || 'anonymous';
  } else if (item !== null && typeof item === 'object' && typeof (item as { handle?: unknown }).handle === 'function') {
    const target = item as { handle: AnyFunction };
    handle = (req: unknown, res: unknown, next: unknown) => target.handle(req, res, next);
    name = target.handle.name || 'handle';
  } else {
    throw invalidArgument(`use() takes middleware, handlers, apps or chains, got ${item === null ? 'null' : typeof item}`);
  }
  return { route, units, handle, name, isErrorMiddleware: handle.length === 4 };
}

function dispatch(app: AnyChain, req: IncomingMessage, res: ServerResponse, out: Next | undefined): void {
  const request = req as IncomingMessage & { originalUrl?: string };
  request.originalUrl ||= req.url;
  new Dispatch(app, req, res, out).run(undefined);
}

/** One request on its way through one chain. */
class Dispatch {
  private readonly stack: readonly ChainLayer[];
  private readonly threshold: number | undefined;
  private index = 0;
  // How req.url was changed for the current layer's mount, to be undone on
  // next(): the URL before and the one given inside, and for a URL the layer
  // replaced, the mount prefix to put in front of it.
  private urlBefore: string | undefined = undefined;
  private urlInside = '';
  private removed = '';
  private protohost = '';
  private slashAdded = false;
  // The resolved path of the last req.url a mount missed, so that the other
  // mounts a request passes do not resolve it again.
  private resolvedUrl: string | undefined = undefined;
  private resolvedPath: string | null = null;
  // A trampoline: next() called while a layer is still running only records
  // that the loop should go on, so 10,000 synchronous middleware use no stack
  // and each layer's synchronous time is its own.
  private running = false;
  private queued = false;
  private queuedError: unknown = undefined;

  constructor(
    private readonly app: AnyChain,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly out: Next | undefined,
  ) {
    const { stack, options } = app[internals];
    this.stack = stack;
    this.threshold = options.blockingThreshold;
  }

  run(err: unknown): void {
    const { stack, req, res, threshold } = this;
    for (;;) {
      const layer = stack[this.index++];
      if (layer === undefined) {
        finish(this.app, req, res, this.out, err);
        return;
      }
      if (layer.isErrorMiddleware !== Boolean(err)) continue;
      if (layer.units.length > 0) {
        const entered = this.enterMount(layer);
        if (entered === null) {
          // Refused as if the item had called next(err); an error already on its way goes on instead.
          err ||= new AmbiguousPathError(layer.name);
          continue;
        }
        if (!entered) continue;
      }

      let called = false;
      const next: Next = (e) => {
        if (called) {
          report(this.app, new NextCalledTwiceError(layer.name), req, res);
          return;
        }
        called = true;
        this.advance(e);
      };

      this.running = true;
      const start = threshold === undefined ? 0 : performance.now();
      try {
        const result = err ? layer.handle(err as never, req as never, res as never, next as never) : layer.handle(req as never, res as never, next as never);
        if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
          (result as PromiseLike<unknown>).then(undefined, (reason: unknown) => this.fail(layer, reason, called, next));
        }
      } catch (thrown) {
        this.fail(layer, thrown, called, next);
      }
      this.running = false;
      if (threshold !== undefined) {
        const duration = performance.now() - start;
        if (duration >= threshold) reportBlocking(this.app, layer, this.index - 1, req, res, duration);
      }
      if (!this.queued) return;
      this.queued = false;
      err = this.queuedError;
      this.queuedError = undefined;
    }
  }

  /** A layer threw or rejected: pass it on, unless the layer had already passed control on. */
  private fail(layer: ChainLayer, reason: unknown, called: boolean, next: Next): void {
    if (called) report(this.app, new ErrorAfterNextError(layer.name, reason), this.req, this.res);
    else next(reason || new EmptyRejectionError(layer.name, reason));
  }

  private advance(err: unknown): void {
    this.restoreUrl();
    if (this.running) {
      this.queued = true;
      this.queuedError = err;
    } else {
      this.run(err);
    }
  }

  /** Whether the request is inside the layer's mount (and req.url set for it); null when its path is ambiguous. */
  private enterMount(layer: ChainLayer): boolean | null {
    const { req } = this;
    const url = req.url ?? '/';
    const protohost = protohostOf(url);
    const end = pathnameEnd(url, protohost.length);
    // The path as sent, and failing that as a decoding handler resolves it
    // (see mount.ts). Inside, req.url is the rest of the path that matched,
    // so a handler there resolves it to what the mount saw.
    let path = url.slice(protohost.length, end);
    let length = matchRoute(path, layer.units);
    if (length < 0) {
      if (url !== this.resolvedUrl) {
        this.resolvedUrl = url;
        this.resolvedPath = resolvePath(path);
      }
      if (this.resolvedPath === null) return null;
      if (this.resolvedPath === path) return false;
      length = matchRoute(this.resolvedPath, layer.units);
      if (length < 0) return false;
      path = this.resolvedPath;
    }
    this.urlBefore = url;
    this.protohost = protohost;
    this.removed = path.slice(0, length);
    let inside = path.slice(length) + url.slice(end);
    if (protohost === '' && inside[0] !== '/') {
      inside = `/${inside}`;
      this.slashAdded = true;
    }
    req.url = this.urlInside = protohost + inside;
    return true;
  }

  private restoreUrl(): void {
    if (this.urlBefore === undefined) return;
    const { req } = this;
    if (req.url === this.urlInside) {
      req.url = this.urlBefore;
    } else {
      // The layer set a URL of its own: keep it, under the mount, as Connect does.
      const url = this.slashAdded ? req.url!.slice(1) : req.url!;
      req.url = this.protohost + this.removed + url.slice(this.protohost.length);
    }
    this.urlBefore = undefined;
    this.slashAdded = false;
  }
}

/** The end of the chain: hand over to the outer `next`, or answer 404 / the error. */
function finish(app: AnyChain, req: IncomingMessage, res: ServerResponse, out: Next | undefined, err: unknown): void {
  if (out !== undefined) {
    out(err);
    return;
  }
  const { options } = app[internals];
  // finalhandler is what Connect and Express end with: escaped "Cannot GET /x",
  // status from err.status/statusCode, err.headers, and a destroyed socket once
  // headers were sent. Stacks only when asked for, whatever NODE_ENV says.
  finalhandler(req, res, {
    env: options.debug ? 'development' : 'production',
    onerror: (error: unknown) => report(app, error, req, res),
  })(err);
}

function report(app: AnyChain, err: unknown, req: IncomingMessage, res: ServerResponse): void {
  const { onError } = app[internals].options;
  if (onError !== undefined) onError(err, req, res);
  else if (statusOf(err) >= 500) console.error(err instanceof Error ? (err.stack ?? err.message) : err);
}

function reportBlocking(app: AnyChain, layer: ChainLayer, index: number, req: IncomingMessage, res: ServerResponse, duration: number): void {
  const info: BlockingInfo = {
    name: layer.name,
    index,
    route: layer.route,
    method: req.method ?? 'GET',
    url: (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/',
    duration,
  };
  if (app.listenerCount('blocking') > 0) {
    app.emit('blocking', info, req, res);
  } else {
    process.emitWarning(`middleware "${info.name}" blocked the event loop for ${duration.toFixed(1)} ms on ${info.method} ${info.url}`, {
      type: 'BlockingWarning',
      code: BLOCKING_WARNING_CODE,
    });
  }
}

function statusOf(err: unknown): number {
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/** `http://host` of an absolute-form request target, else `""`. */
function protohostOf(url: string): string {
  if (url.length === 0 || url[0] === '/') return '';
  const scheme = url.indexOf('://');
  if (scheme === -1 || url.lastIndexOf('?', scheme) !== -1) return '';
  const slash = url.indexOf('/', scheme + 3);
  return slash === -1 ? url : url.slice(0, slash);
}

function pathnameEnd(url: string, from: number): number {
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x3f /* ? */ || c === 0x23 /* # */) return i;
  }
  return url.length;
}

function isOptions(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Server) && typeof (value as { handle?: unknown }).handle !== 'function';
}

function validateOptions<Req extends IncomingMessage, Res extends ServerResponse>(options: ChainOptions<Req, Res>): ChainInternals['options'] {
  const known = new Set(['blockingThreshold', 'debug', 'onError']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw invalidArgument(`unknown chain option "${key}" (known: ${[...known].join(', ')})`);
  }
  const { blockingThreshold, debug = false, onError } = options;
  if (blockingThreshold !== undefined && !(typeof blockingThreshold === 'number' && blockingThreshold >= 0 && Number.isFinite(blockingThreshold))) {
    throw invalidArgument(`blockingThreshold must be a number of milliseconds ≥ 0, got ${String(blockingThreshold)}`);
  }
  if (typeof debug !== 'boolean') throw invalidArgument(`debug must be a boolean, got ${typeof debug}`);
  if (onError !== undefined && typeof onError !== 'function') throw invalidArgument(`onError must be a function, got ${typeof onError}`);
  return { blockingThreshold, debug, onError } as ChainInternals['options'];
}
