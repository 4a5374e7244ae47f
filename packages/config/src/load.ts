import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Alias, LineCounter, parseDocument, visit } from 'yaml';
import { substituteEnv } from './env.js';
import { ConfigNotFoundError, ConfigParseError, ConfigUnsupportedError, invalidArgument } from './errors.js';
import type { LoadedConfig, LoadOptions } from './types.js';
import { validateConfig } from './validate.js';

/** The names `findConfig` looks for, in this order. */
export const DEFAULT_CONFIG_NAMES = ['unblock.config.yaml', 'unblock.config.yml', 'unblock.config.json', 'unblock.config.js', 'unblock.config.mjs'] as const;

/**
 * The config file to use: `file` resolved against `cwd` (a folder means "look
 * in it"), or the first of `DEFAULT_CONFIG_NAMES` found in `cwd`.
 */
export function findConfig(file?: string, cwd: string = process.cwd()): string {
  if (file !== undefined) {
    if (typeof file !== 'string' || file === '') throw invalidArgument('the config file must be a non-empty string');
    const path = resolve(cwd, file);
    if (!existsSync(path)) throw new ConfigNotFoundError(`config file not found: ${path}`, path);
    if (!statSync(path).isDirectory()) return path;
    cwd = path;
  }
  for (const name of DEFAULT_CONFIG_NAMES) {
    const path = join(cwd, name);
    if (existsSync(path)) return path;
  }
  throw new ConfigNotFoundError(`no config file in ${cwd} (looked for ${DEFAULT_CONFIG_NAMES.join(', ')})`);
}

/**
 * Reads, substitutes and validates a config file. Nothing is imported or
 * started besides the config file itself (a JS/TS config is a module and
 * runs). Throws a ConfigError with a `code` on any problem.
 */
export async function loadConfig(file?: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const path = findConfig(file, options.cwd);
  const raw = await readConfigFile(path, options.env ?? process.env);
  return validateConfig(raw, { file: path, dir: dirname(path) });
}

/** The file's content as a plain value: parsed YAML/JSON with `${VAR}` substituted, or a JS/TS module's default export (called when it is a function). */
export async function readConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<unknown> {
  const ext = extname(path).toLowerCase();
  switch (ext) {
    case '.yaml':
    case '.yml':
    case '.json':
      return substituteEnv(parseText(await readFile(path, 'utf8'), path, ext === '.json'), env, path);
    case '.js':
    case '.mjs':
    case '.cjs':
    case '.ts':
    case '.mts':
    case '.cts':
      return importConfig(path, env);
    default:
      throw new ConfigUnsupportedError(`cannot load a config from a "${ext || 'extension-less'}" file: use .yaml, .yml, .json, .js or .mjs (or .ts where Node runs TypeScript)`, path);
  }
}

function parseText(raw: string, path: string, json: boolean): unknown {
  // Editors on Windows may start a UTF-8 file with a byte order mark: it is
  // no part of the content (YAML skips it, JSON.parse does not).
  const text = raw.replace(/^\uFEFF/, '');
  if (json) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new ConfigParseError(`${path}: not valid JSON: ${(err as Error).message}`, path, { cause: err });
    }
  }
  // YAML 1.2 core schema: `on`/`yes` stay strings, as in JSON, so a YAML
  // file and its JSON twin mean the same thing.
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { schema: 'core', prettyErrors: true, uniqueKeys: true, lineCounter });
  const [first] = document.errors;
  if (first !== undefined) {
    const where = first.linePos?.[0] ? `:${first.linePos[0].line}:${first.linePos[0].col}` : '';
    throw new ConfigParseError(`${path}${where}: not valid YAML: ${first.message.split('\n')[0]}`, path, { cause: first });
  }
  // An alias is resolved only here, and the yaml package's errors for one
  // (an undefined anchor, too many expansions) carry no position: the alias
  // being resolved when one is thrown is where the mistake is.
  const resolving: Alias[] = [];
  visit(document, {
    Alias(_key, alias) {
      alias.toJSON = (...args: Parameters<Alias['toJSON']>) => {
        resolving.push(alias);
        const value: unknown = Alias.prototype.toJSON.apply(alias, args);
        resolving.pop();
        return value;
      };
    },
  });
  try {
    return document.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    const offset = resolving.at(-1)?.range?.[0];
    const position = offset === undefined ? undefined : lineCounter.linePos(offset);
    const where = position === undefined ? '' : `:${position.line}:${position.col}`;
    throw new ConfigParseError(`${path}${where}: not valid YAML: ${(err as Error).message}`, path, { cause: err });
  }
}

async function importConfig(path: string, env: NodeJS.ProcessEnv): Promise<unknown> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      // Node 20 cannot import TypeScript on its own; Node >= 22.18 strips
      // types by default, and a loader (`node --import tsx`) works anywhere.
      throw new ConfigUnsupportedError(
        `${path}: this Node (${process.version}) cannot import TypeScript: run on Node >= 22.18, or with a loader (node --import tsx), or write the config as .js/.mjs/.yaml`,
        path,
        { cause: err },
      );
    }
    throw new ConfigParseError(`${path}: failed to load: ${(err as Error)?.message ?? String(err)}`, path, { cause: err });
  }
  let value = module.default;
  if (value === undefined) throw new ConfigParseError(`${path}: has no default export (export default { chain: [...] })`, path);
  if (typeof value === 'function') {
    try {
      value = await (value as (context: { env: NodeJS.ProcessEnv }) => unknown)({ env });
    } catch (err) {
      throw new ConfigParseError(`${path}: the exported config function threw: ${(err as Error)?.message ?? String(err)}`, path, { cause: err });
    }
  }
  return value;
}
