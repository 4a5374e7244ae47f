// Validation with messages a person can act on: every problem at once, each
// with its path in the file, what was expected, what was found, and the
// likely intended name for a typo. Ajv checks values against the composed
// schema; chain items are walked here, so that a wrong step is reported by
// its name.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import leven from 'leven';
import { joinPath } from './env.js';
import { ConfigValidationError, type ConfigIssue } from './errors.js';
import { composeSchema, stepNames, STRUCTURAL_STEPS } from './schema.js';
import { builtinSteps } from './steps.js';
import type { AccessLog, JsonSchema, LoadedConfig, ServerConfig, Step, TlsConfig, ValidateOptions } from './types.js';
import { MAX_TIMER_MS, parseDuration } from './units.js';

const SCHEMA_ID = 'unblock-config';
let compiled: { root: ValidateFunction; definitions: JsonSchema; options: Map<string, ValidateFunction> } | undefined;

function validators() {
  if (compiled !== undefined) return compiled;
  // strict: false because the packages' schemas may carry annotations Ajv's
  // strict mode does not know; they are documentation, not rules.
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });
  const schema = composeSchema({ validateSteps: false });
  ajv.addSchema(schema, SCHEMA_ID);
  const options = new Map<string, ValidateFunction>();
  for (const step of builtinSteps) options.set(step.name, ajv.getSchema(`${SCHEMA_ID}#/definitions/options:${step.name}`)!);
  compiled = { root: ajv.getSchema(SCHEMA_ID)!, definitions: schema.definitions as JsonSchema, options };
  return compiled;
}

/**
 * Checks a config value (as read from a file, or written in code) and
 * returns it resolved: durations in ms, defaults filled in, one entry per
 * server. Throws a ConfigValidationError listing every problem.
 */
export function validateConfig(value: unknown, options: ValidateOptions = {}): LoadedConfig {
  const issues: ConfigIssue[] = [];
  const { root, definitions } = validators();
  if (!isObject(value)) {
    throw new ConfigValidationError([{ path: '', message: `expected an object with a chain, found ${show(value)}`, expected: 'an object', found: show(value) }], options.file);
  }
  // Functions are JS-config-only values the schema cannot describe: checked
  // by the step that receives them, so they are hidden from the schema check.
  if (!root(withoutFunctions(value))) issues.push(...toIssues(root.errors ?? [], '', definitions));

  const config = value;
  const hasChain = config.chain !== undefined;
  const hasServers = config.servers !== undefined;
  if (hasChain === hasServers) {
    issues.push({ path: '', message: hasChain ? 'has both "chain" and "servers": give one chain, or several servers each with its own chain' : 'has no "chain" (or "servers")', expected: 'chain or servers' });
  }

  const dir = options.dir ?? (options.file ? resolve(options.file, '..') : process.cwd());
  const pools = collectPools(config, issues);
  const server = isObject(config.server) ? config.server : {};
  const servers: ServerConfig[] = [];
  if (hasChain && !hasServers) {
    servers.push(resolveServer(server, {}, 'server', 'server', walkChain(config.chain, 'chain', pools, issues), dir, issues));
  } else if (Array.isArray(config.servers)) {
    const names = new Map<string, string>();
    config.servers.forEach((entry, i) => {
      const path = `servers[${i}]`;
      if (!isObject(entry)) return;
      const named = typeof entry.name === 'string';
      const name = named ? (entry.name as string) : i === 0 ? 'server' : `server-${i + 1}`;
      claimName(names, name, named, path, issues);
      servers.push(resolveServer(server, entry, name, path, walkChain(entry.chain, `${path}.chain`, pools, issues), dir, issues));
    });
    checkAddresses(servers, issues);
  }

  // The default pool exists when it is configured or used, so that a config
  // without offload steps has no pool to show or to apply --threads to.
  if (config.pool === undefined && !servers.some((s) => usesDefaultPool(s.chain))) pools.delete('default');

  const shutdownTimeout = timerDuration(server.shutdownTimeout, 'server.shutdownTimeout', 10_000, issues);
  if (issues.length > 0) throw new ConfigValidationError(dedupe(issues), options.file);
  return {
    file: options.file,
    dir,
    workers: server.workers === 'auto' ? 'auto' : typeof server.workers === 'number' ? server.workers : 1,
    shutdownTimeout,
    pools: Object.fromEntries([...pools].map(([name, poolOptions]) => [name, poolOptions])),
    servers,
  };
}

function collectPools(config: Record<string, unknown>, issues: ConfigIssue[]): Map<string, Record<string, unknown>> {
  const pools = new Map<string, Record<string, unknown>>();
  const add = (name: string, poolOptions: unknown, path: string) => {
    const options = isObject(poolOptions) ? poolOptions : {};
    pools.set(name, options);
    checkThreads(options, path, issues);
  };
  add('default', config.pool, 'pool');
  if (isObject(config.pools)) {
    for (const [name, poolOptions] of Object.entries(config.pools)) {
      if (name === 'default') issues.push({ path: 'pools.default', message: 'the default pool is the "pool" section: give it there, or name this pool otherwise' });
      else add(name, poolOptions, `pools.${name}`);
    }
  }
  return pools;
}

/**
 * What the schema cannot say of a pool: minThreads within maxThreads. Checked
 * here, for every pool, rather than when an offload step first creates it
 * (which a pool no step uses never is).
 */
function checkThreads(pool: Record<string, unknown>, path: string, issues: ConfigIssue[]): void {
  const { minThreads, maxThreads } = pool;
  if (typeof minThreads !== 'number') return;
  if (typeof maxThreads === 'number') {
    if (minThreads > maxThreads) issues.push({ path: `${path}.minThreads`, message: `must not be more than maxThreads (${maxThreads}), found ${minThreads}` });
  } else if (minThreads > defaultMaxThreads()) {
    issues.push({ path: `${path}.minThreads`, message: `must not be more than maxThreads, by default the ${defaultMaxThreads()} CPUs of this machine (os.availableParallelism()), found ${minThreads}: give maxThreads too` });
  }
}

function defaultMaxThreads(): number {
  return Math.max(1, availableParallelism());
}

function usesDefaultPool(steps: readonly Step[]): boolean {
  return steps.some((step) =>
    step.kind === 'mount' ? usesDefaultPool(step.chain) : step.kind === 'builtin' && step.name === 'offload' && step.options.inline !== true && (step.options.pool ?? 'default') === 'default',
  );
}

function resolveServer(defaults: Record<string, unknown>, entry: Record<string, unknown>, name: string, path: string, chain: Step[], dir: string, issues: ConfigIssue[]): ServerConfig {
  const setting = (key: string) => (entry[key] !== undefined ? entry[key] : defaults[key]);
  // A setting inherited from `server` is reported where it is written.
  const origin = (key: string) => (entry[key] === undefined && defaults[key] !== undefined ? `server.${key}` : `${path}.${key}`);
  const timer = (key: string, fallback: number) => timerDuration(setting(key), origin(key), fallback, issues);
  const health = setting('health');
  const accessLog = setting('accessLog');
  const blockingThreshold = setting('blockingThreshold');
  const headersTimeout = timer('headersTimeout', 10_000);
  const requestTimeout = timer('requestTimeout', 60_000);
  if (requestTimeout > 0 && headersTimeout > requestTimeout) {
    issues.push({ path: origin('headersTimeout'), message: `must not be longer than requestTimeout (${requestTimeout} ms)` });
  }
  return {
    name,
    port: typeof setting('port') === 'number' ? (setting('port') as number) : 3000,
    host: typeof setting('host') === 'string' ? (setting('host') as string) : '127.0.0.1',
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: timer('keepAliveTimeout', 5_000),
    health: typeof health === 'string' ? health : undefined,
    accessLog: (accessLog === true ? 'auto' : accessLog === 'human' || accessLog === 'json' ? accessLog : false) as AccessLog,
    blockingThreshold: blockingThreshold === undefined ? undefined : parseDuration(blockingThreshold),
    tls: resolveTls(setting('tls'), origin('tls'), dir),
    path,
    chain,
  };
}

/**
 * A duration that becomes a timer or a node:http timeout: those take whole
 * milliseconds (node:http throws a RangeError for 10.5) up to MAX_TIMER_MS
 * (longer ones fire at once). `fallback` when the setting is absent; the
 * schema check reports any other value that is not a duration.
 */
function timerDuration(value: unknown, path: string, fallback: number, issues: ConfigIssue[]): number {
  const parsed = value === undefined ? undefined : parseDuration(value);
  if (parsed === undefined) return fallback;
  if (!Number.isInteger(parsed) || parsed > MAX_TIMER_MS) {
    const found = typeof value === 'number' ? String(value) : `${show(value)} (${parsed} ms)`;
    issues.push({ path, message: `expected a whole number of milliseconds up to ${MAX_TIMER_MS} (about 24.8 days), found ${found}`, expected: `a whole number of milliseconds up to ${MAX_TIMER_MS}`, found });
  }
  return parsed;
}

/** The schema checked its shape: the files' paths resolved against the config's folder. */
function resolveTls(tls: unknown, path: string, dir: string): TlsConfig | undefined {
  if (!isObject(tls)) return undefined;
  const file = (value: unknown) => (typeof value === 'string' ? resolve(dir, value) : undefined);
  return { key: file(tls.key) ?? '', cert: file(tls.cert) ?? '', passphrase: typeof tls.passphrase === 'string' ? tls.passphrase : undefined, path };
}

/** Server names key the ports chosen for port 0 and tell servers apart in logs: each must be unique. */
function claimName(claimed: Map<string, string>, name: string, named: boolean, path: string, issues: ConfigIssue[]): void {
  const owner = claimed.get(name);
  if (owner === undefined) claimed.set(name, named ? path : `${path} (its default name)`);
  else if (named) issues.push({ path: `${path}.name`, message: `"${name}" is already the name of ${owner}: give each server its own name` });
  else issues.push({ path, message: `has no name, and its default name "${name}" is already the name of ${owner}: give it a name` });
}

function checkAddresses(servers: ServerConfig[], issues: ConfigIssue[]): void {
  const seen = new Map<string, string>();
  for (const s of servers) {
    if (s.port === 0) continue;
    const key = `${s.host}:${s.port}`;
    const other = seen.get(key);
    if (other !== undefined) issues.push({ path: `${s.path}.port`, message: `${key} is already the address of ${other}` });
    else seen.set(key, s.path);
  }
}

function walkChain(value: unknown, path: string, pools: Map<string, unknown>, issues: ConfigIssue[]): Step[] {
  if (!Array.isArray(value)) return []; // the schema check reported it
  const steps: Step[] = [];
  value.forEach((item, i) => {
    const step = walkStep(item, `${path}[${i}]`, pools, issues);
    if (step !== undefined) steps.push(step);
  });
  return steps;
}

function walkStep(item: unknown, path: string, pools: Map<string, unknown>, issues: ConfigIssue[]): Step | undefined {
  if (typeof item === 'function' || (isObject(item) && typeof item.handle === 'function')) return { kind: 'item', value: item, path };
  if (!isObject(item)) {
    issues.push({ path, message: `expected a step such as { app: ./app.js }, found ${show(item)}`, expected: 'a step', found: show(item) });
    return undefined;
  }
  const names = stepNames();
  const keys = Object.keys(item);
  const kinds = keys.filter((key) => names.includes(key));
  if (kinds.length === 0) {
    const [first = ''] = keys;
    issues.push({ path, found: first, ...suggest(keys.length === 0 ? 'empty step' : `unknown step "${first}"`, first, names, `steps: ${names.join(', ')}`) });
    return undefined;
  }
  if (kinds.length > 1) {
    issues.push({ path, message: `one step per list item, found ${kinds.map((k) => `"${k}"`).join(' and ')}: start each with its own "-"` });
    return undefined;
  }
  const [kind] = kinds as [string];
  const at = joinPath(path, kind);
  const companions: Record<string, readonly string[]> = { mount: ['chain'], use: ['export', 'options'], app: [] };
  const allowed = companions[kind] ?? [];
  const builtin = builtinSteps.find((step) => step.name === kind);
  let misplaced = false;
  for (const key of keys) {
    if (key === kind || allowed.includes(key)) continue;
    const options = builtin ? Object.keys(((builtin.optionsSchema.properties as JsonSchema | undefined) ?? {})) : [];
    if (builtin && options.includes(key)) {
      // `- offload:` followed by options at the same indentation: YAML reads
      // them as siblings of "offload" with "offload" itself null.
      misplaced = true;
      issues.push({ path: joinPath(path, key), message: `"${key}" is beside "${kind}" instead of under it: indent the options of ${kind} one level deeper` });
    } else {
      issues.push({ path: joinPath(path, key), found: key, ...suggest(`unexpected key beside "${kind}"`, key, allowed, allowed.length > 0 ? `allowed: ${allowed.join(', ')}` : `"${kind}" takes no other keys`) });
    }
  }
  if (misplaced) return undefined;

  switch (kind as (typeof STRUCTURAL_STEPS)[number]) {
    case 'mount': {
      if (typeof item.mount !== 'string' || !item.mount.startsWith('/')) {
        issues.push({ path: at, message: `expected a path starting with "/", found ${show(item.mount)}`, expected: 'a path such as /reports', found: show(item.mount) });
      }
      if (!Array.isArray(item.chain)) {
        issues.push({ path: joinPath(path, 'chain'), message: `expected a list of steps, found ${show(item.chain)}`, expected: 'a list of steps', found: show(item.chain) });
        return undefined;
      }
      return { kind: 'mount', route: String(item.mount), chain: walkChain(item.chain, joinPath(path, 'chain'), pools, issues), path };
    }
    case 'app':
      if (!isModuleReference(item.app)) {
        issues.push({ path: at, message: `expected a module path or package name, found ${show(item.app)}`, expected: 'a module', found: show(item.app) });
        return undefined;
      }
      return { kind: 'app', module: item.app, path };
    case 'use':
      if (!isModuleReference(item.use)) {
        issues.push({ path: at, message: `expected a package name or module path, found ${show(item.use)}`, expected: 'a module', found: show(item.use) });
        return undefined;
      }
      if (item.export !== undefined && (typeof item.export !== 'string' || item.export === '')) {
        issues.push({ path: joinPath(path, 'export'), message: `expected the name of an export, found ${show(item.export)}` });
      }
      return { kind: 'use', module: item.use, export: item.export as string | undefined, options: item.options, hasOptions: 'options' in item, path };
  }
  return walkBuiltin(builtin!, item[kind], at, pools, issues);
}

function walkBuiltin(step: (typeof builtinSteps)[number], value: unknown, path: string, pools: Map<string, unknown>, issues: ConfigIssue[]): Step | undefined {
  const options = value ?? {};
  if (!isObject(options)) {
    issues.push({ path, message: `expected options (an object) or nothing, found ${show(value)}`, expected: 'an object', found: show(value) });
    return undefined;
  }
  const { options: validate } = validators();
  const before = issues.length;
  if (!validate.get(step.name)!(withoutFunctions(options))) issues.push(...toIssues(validate.get(step.name)!.errors ?? [], path, validators().definitions));
  if (typeof options.pool === 'string' && !pools.has(options.pool)) {
    issues.push({ path: joinPath(path, 'pool'), found: options.pool, ...suggest(`no pool named "${options.pool}"`, options.pool, [...pools.keys()], `pools: ${[...pools.keys()].join(', ')}`) });
  }
  return issues.length === before ? { kind: 'builtin', name: step.name, options, path } : undefined;
}

function isModuleReference(value: unknown): boolean {
  return (typeof value === 'string' && value !== '') || typeof value === 'function' || (isObject(value) && typeof value.handle === 'function');
}

// ——— Ajv errors → issues ———

function toIssues(errors: readonly ErrorObject[], base: string, definitions: JsonSchema): ConfigIssue[] {
  // An anyOf/oneOf is reported once, as "expected A or B", not once per branch.
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const relevant = errors.filter((e) => !unions.some((u) => u !== e && e.schemaPath.startsWith(`${u.schemaPath}/`)));
  return relevant.map((error) => toIssue(error, base, definitions));
}

function toIssue(error: ErrorObject, base: string, definitions: JsonSchema): ConfigIssue {
  const path = pointerToPath(base, error.instancePath);
  const parent = (error.parentSchema ?? {}) as JsonSchema;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = (error.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((parent.properties as JsonSchema | undefined) ?? {}).filter((k) => k !== '$schema');
      return { path: joinPath(path, key), found: key, ...suggest('unknown option', key, known, `known: ${known.join(', ')}`) };
    }
    case 'required': {
      const key = (error.params as { missingProperty: string }).missingProperty;
      return { path, message: `missing required option "${key}"` };
    }
    case 'propertyNames':
      return { path, message: `bad name "${(error.params as { propertyName: string }).propertyName}" (letters, digits, - and _, starting with a letter)` };
    case 'enum': {
      const allowed = (error.schema as unknown[]).map((v) => JSON.stringify(v));
      const found = show(error.data);
      const message = `expected one of ${allowed.join(', ')}, found ${found}`;
      const strings = (error.schema as unknown[]).filter((v): v is string => typeof v === 'string');
      const guess = typeof error.data === 'string' ? suggest(message, error.data, strings, '').suggestion : undefined;
      return { path, message, expected: `one of ${allowed.join(', ')}`, found, ...(guess === undefined ? {} : { suggestion: guess }) };
    }
    default: {
      const expected = describeSchema(parent, definitions);
      const found = show(error.data);
      return { path, message: `expected ${expected}, found ${found}`, expected, found };
    }
  }
}

/** "a number ≥ 0 or a duration such as \"5s\"": what a schema accepts, in words. */
function describeSchema(schema: unknown, definitions: JsonSchema): string {
  if (schema === true || !isObject(schema)) return 'anything';
  if (typeof schema.$ref === 'string') return describeSchema(definitions[schema.$ref.replace('#/definitions/', '')], definitions);
  const alternatives = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined;
  if (Array.isArray(alternatives)) return alternatives.map((alt) => describeSchema(alt, definitions)).join(' or ');
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if ('const' in schema) return JSON.stringify(schema.const);
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : typeof schema.type === 'string' ? [schema.type] : [];
  if (types.length === 0) return 'a valid value';
  return types.map((type) => describeType(type, schema)).join(' or ');
}

function describeType(type: string, schema: JsonSchema): string {
  const bounds: string[] = [];
  if (typeof schema.minimum === 'number') bounds.push(`≥ ${schema.minimum}`);
  if (typeof schema.exclusiveMinimum === 'number') bounds.push(`> ${schema.exclusiveMinimum}`);
  if (typeof schema.maximum === 'number') bounds.push(`≤ ${schema.maximum}`);
  switch (type) {
    case 'integer':
      return ['a whole number', ...bounds].join(' ');
    case 'number':
      return ['a number', ...bounds].join(' ');
    case 'string': {
      const pattern = typeof schema.pattern === 'string' ? schema.pattern : undefined;
      // Recognize the unit grammars by the units they name.
      if (pattern !== undefined && /ms\b|sec/.test(pattern)) return 'a duration such as "5s" or "250ms"';
      if (pattern !== undefined && /kb|\[bB\]/i.test(pattern)) return 'a size such as "2mb" or "512kb"';
      if (pattern === '^/') return 'a path starting with "/"';
      if (pattern !== undefined) return `a string matching /${pattern}/`;
      return typeof schema.minLength === 'number' && schema.minLength > 0 ? 'a non-empty string' : 'a string';
    }
    case 'boolean':
      return 'true or false';
    case 'array':
      return typeof schema.minItems === 'number' && schema.minItems > 0 ? `a list of at least ${schema.minItems}` : 'a list';
    case 'object':
      return 'an object';
    case 'null':
      return 'nothing';
    default:
      return type;
  }
}

/** How a found value is shown: short, typed. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  return 'an object';
}

/**
 * The closest known name when `word` is close enough to be a typo of it
 * (`{ suggestion }`), else the list of names appended to the message.
 */
function suggest(message: string, word: string, known: readonly string[], list: string): Pick<ConfigIssue, 'message' | 'suggestion'> {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = leven(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3))) return { message, suggestion: best };
  return { message: `${message} (${list})` };
}

function pointerToPath(base: string, pointer: string): string {
  let path = base;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^\d+$/.test(key) ? joinPath(path, Number(key)) : joinPath(path, key);
  }
  return path;
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\0${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function withoutFunctions(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v !== 'function'));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
