import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chain, type Chain, type ChainItem } from '@unblock/chain';
import { fromKoa } from '@unblock/koa';
import { detectKind } from '@unblock/worker-pool';
import { resolve as resolveModule } from 'import-meta-resolve';
import { ConfigModuleError, ConfigStepError, invalidArgument } from './errors.js';
import { builtinSteps, poolProvider } from './steps.js';
import type { LoadedConfig, ServerConfig, Step, StepContext, StepResult } from './types.js';
import { validateConfig } from './validate.js';

/** What `build` returns: one chain per server, and the pools they share. */
export interface BuiltApp {
  config: LoadedConfig;
  servers: { config: ServerConfig; chain: Chain }[];
  /** The pools created so far, by name (a pool is created when the first offload step names it). */
  pools: ReadonlyMap<string, unknown>;
  /** Utilization, queue length and whether it sheds load, for each pool created so far (for health endpoints). */
  poolStats(): Record<string, PoolStats>;
  /** Closes the pools. Call it once the servers have stopped. */
  close(): Promise<void>;
}

/** What a pool reports of itself. */
export interface PoolStats {
  [figure: string]: unknown;
  /** True while the pool refuses new work: its queue is full. */
  shedding: boolean;
}

/** A chain built from a config: a chain, plus `close()` for the pools behind its offload steps. */
export type BuiltChain = Chain & {
  /** Closes the worker pools the chain's offload steps use. */
  close(): Promise<void>;
  readonly pools: ReadonlyMap<string, unknown>;
};

/**
 * Builds the chain of a one-server config. `config` is what `loadConfig`
 * returns, or a config object (validated here; relative paths resolve
 * against `process.cwd()`).
 *
 * ```js
 * const app = await buildChain(await loadConfig('unblock.config.yaml'));
 * http.createServer(app).listen(3000);
 * // on shutdown, after server.close():
 * await app.close();
 * ```
 */
export async function buildChain(config: LoadedConfig | Record<string, unknown>): Promise<BuiltChain> {
  const built = await build(config);
  if (built.servers.length !== 1) {
    await built.close();
    throw invalidArgument(`buildChain() builds one chain, but the config has ${built.servers.length} servers: use build() instead`);
  }
  return Object.assign(built.servers[0]!.chain, { close: built.close, pools: built.pools });
}

/** Builds every server's chain of a config, with the pools they share. On failure, the pools created so far are closed. */
export async function build(config: LoadedConfig | Record<string, unknown>): Promise<BuiltApp> {
  const loaded = isLoaded(config) ? config : validateConfig(config);
  const pools = new Map<string, unknown>();
  const closePools = async () => {
    const all = [...pools.values()];
    pools.clear();
    await Promise.all(all.map((pool) => poolProvider.close(pool)));
  };
  const pool = async (name: string) => {
    let existing = pools.get(name);
    if (existing === undefined) {
      const options = loaded.pools[name];
      if (options === undefined) throw invalidArgument(`no pool named "${name}"`);
      existing = poolProvider.create(options);
      pools.set(name, existing);
    }
    return existing;
  };
  try {
    const servers = [];
    for (const server of loaded.servers) {
      const app = chain(server.blockingThreshold === undefined ? {} : { blockingThreshold: server.blockingThreshold });
      await addSteps(app, server.chain, { loaded, pool });
      servers.push({ config: server, chain: app });
    }
    const poolStats = () => Object.fromEntries([...pools].map(([name, p]) => [name, poolProvider.stats(p)]));
    return { config: loaded, servers, pools, poolStats, close: closePools };
  } catch (err) {
    await closePools();
    throw err;
  }
}

/**
 * Imports the handler module of every offload step here, on this thread, and
 * checks that its default export is a handler of a kind offload runs (what
 * `unblock check` does): at run time these load on the pools' threads, at
 * the first request, where a broken one would only fail requests. The
 * module's top-level code runs, as an app module's does when a chain is
 * built; its `init()`, which each thread calls before it takes requests,
 * does not. Throws a ConfigModuleError naming the step's `handler`.
 */
export async function checkHandlers(config: LoadedConfig): Promise<void> {
  for (const server of config.servers) await checkStepHandlers(server.chain, config);
}

async function checkStepHandlers(steps: readonly Step[], loaded: LoadedConfig): Promise<void> {
  for (const step of steps) {
    if (step.kind === 'mount') await checkStepHandlers(step.chain, loaded);
    if (step.kind !== 'builtin' || step.name !== 'offload') continue;
    const path = `${step.path}.handler`;
    // Relative to the config file, as the offload step resolves it.
    const file = resolve(loaded.dir, step.options.handler as string);
    const value = (await importModule(file, path, loaded)).default;
    if (detectKind(value) === undefined) {
      throw new ConfigModuleError(`the default export of ${file} is ${value === null ? 'null' : typeof value}, not a handler: export a (req, res) function, an Express/Connect/Koa app, or a fetch-style handler`, path, loaded.file);
    }
  }
}

interface BuildContext {
  loaded: LoadedConfig;
  pool: (name: string) => Promise<unknown>;
}

async function addSteps(target: Chain, steps: readonly Step[], context: BuildContext): Promise<void> {
  const terminals: unknown[] = [];
  for (const step of steps) {
    if (step.kind === 'mount') {
      const nested = chain();
      await addSteps(nested, step.chain, context);
      target.use(step.route, nested);
    } else {
      const { middleware, terminal } = await buildStep(step, context);
      target.use(middleware as ChainItem);
      if (terminal !== undefined) terminals.unshift(terminal);
    }
  }
  // Innermost first: the terminal of the last error-handler step is the first to see an error.
  for (const terminal of terminals) target.use(terminal as ChainItem);
}

async function buildStep(step: Exclude<Step, { kind: 'mount' }>, context: BuildContext): Promise<StepResult> {
  const { loaded } = context;
  switch (step.kind) {
    case 'item':
      return { middleware: step.value };
    case 'app':
      return { middleware: toApp(typeof step.module === 'string' ? await importDefault(step.module, step.path, loaded) : step.module, step.path, loaded) };
    case 'use': {
      const factory = typeof step.module === 'string' ? await importExport(step.module, step.export, `${step.path}.use`, loaded) : step.module;
      if (typeof factory !== 'function') {
        throw new ConfigModuleError(`${describeModule(step)} is not a function (a middleware factory), it is ${typeof factory}`, `${step.path}.use`, loaded.file);
      }
      const middleware = await callStep(() => (step.hasOptions ? factory(step.options) : factory()), step.path, loaded);
      if (typeof middleware !== 'function' && !(typeof middleware === 'object' && middleware !== null && typeof (middleware as { handle?: unknown }).handle === 'function')) {
        throw new ConfigStepError(`${describeModule(step)}(options) returned ${middleware === null ? 'null' : typeof middleware}, not a middleware`, step.path, loaded.file);
      }
      return { middleware };
    }
    case 'builtin': {
      const definition = builtinSteps.find((s) => s.name === step.name)!;
      const stepContext: StepContext = { dir: loaded.dir, path: `${step.path}`, pool: context.pool };
      const options = { ...step.options };
      return (await callStep(() => definition.create(options, stepContext), step.path, loaded)) as StepResult;
    }
  }
}

/** Runs a factory; its TypeError (bad options) becomes a ConfigStepError naming the step. */
async function callStep(create: () => unknown, path: string, loaded: LoadedConfig): Promise<unknown> {
  try {
    return await create();
  } catch (err) {
    const code = (err as { code?: unknown })?.code;
    throw new ConfigStepError(`${(err as Error)?.message ?? String(err)}${typeof code === 'string' ? ` (${code})` : ''}`, path, loaded.file, { cause: err });
  }
}

/**
 * Turns an app module's export into a chain item: a Koa app is adapted with
 * fromKoa; Express/Connect apps, http.Server and functions are taken as they are.
 */
function toApp(value: unknown, path: string, loaded: LoadedConfig): unknown {
  if (isKoaApp(value)) return fromKoa(value as Parameters<typeof fromKoa>[0]);
  if (typeof value === 'function' || (typeof value === 'object' && value !== null && (typeof (value as { handle?: unknown }).handle === 'function' || typeof (value as { listeners?: unknown }).listeners === 'function'))) {
    return value;
  }
  throw new ConfigModuleError(`the module's default export is ${value === null ? 'null' : typeof value}, not an app (an Express/Connect/Koa app, an http.Server or a (req, res) function)`, `${path}.app`, loaded.file);
}

/** A Koa application: has `callback()` and a `middleware` array (Express apps have neither). */
export function isKoaApp(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { callback?: unknown }).callback === 'function' && Array.isArray((value as { middleware?: unknown }).middleware);
}

function describeModule(step: { module: unknown; export?: string | undefined }): string {
  const name = typeof step.module === 'string' ? step.module : 'the factory';
  return step.export === undefined ? `"${name}"` : `"${name}".${step.export}`;
}

/** The file URL a module reference stands for: a path (./x.js, ../x, /abs) relative to the config's folder, or a package resolved from there. */
export function resolveModuleUrl(specifier: string, path: string, loaded: Pick<LoadedConfig, 'dir' | 'file'>): string {
  if (specifier.startsWith('.') || isAbsolute(specifier)) return pathToFileURL(resolve(loaded.dir, specifier)).href;
  try {
    // Resolved as an import from the config file's folder, so a package
    // installed next to the config is found, with its "exports" conditions.
    return resolveModule(specifier, pathToFileURL(join(loaded.dir, 'unblock.config.js')).href);
  } catch (err) {
    throw new ConfigModuleError(`cannot find package "${specifier}" from ${loaded.dir} (is it installed?)`, path, loaded.file, { cause: err });
  }
}

async function importModule(specifier: string, path: string, loaded: LoadedConfig): Promise<Record<string, unknown>> {
  const url = resolveModuleUrl(specifier, path, loaded);
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: unknown })?.code;
    const message = code === 'ERR_MODULE_NOT_FOUND' && url.startsWith('file:') && !isBare(specifier) ? `cannot find module ${specifier} (looked at ${new URL(url).pathname})` : `cannot import ${specifier}: ${(err as Error)?.message ?? String(err)}`;
    throw new ConfigModuleError(message, path, loaded.file, { cause: err });
  }
}

async function importDefault(specifier: string, path: string, loaded: LoadedConfig): Promise<unknown> {
  const module = await importModule(specifier, `${path}.app`, loaded);
  return 'default' in module ? module.default : module;
}

async function importExport(specifier: string, name: string | undefined, path: string, loaded: LoadedConfig): Promise<unknown> {
  const module = await importModule(specifier, path, loaded);
  if (name === undefined) return 'default' in module ? module.default : module;
  // A CommonJS module's named exports may only be on its default export.
  const value = name in module ? module[name] : (module.default as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) throw new ConfigModuleError(`${specifier} has no export "${name}"`, path, loaded.file);
  return value;
}

function isBare(specifier: string): boolean {
  return !specifier.startsWith('.') && !isAbsolute(specifier);
}

function isLoaded(config: unknown): config is LoadedConfig {
  return typeof config === 'object' && config !== null && Array.isArray((config as LoadedConfig).servers) && typeof (config as LoadedConfig).dir === 'string';
}
