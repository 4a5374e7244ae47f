import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { build, checkHandlers, findConfig, formatTree, loadConfig } from '@unblock/config';
import { StartError, UsageError } from './errors.js';
import { formatError } from './format.js';
import { createLogger } from './log.js';
import type { Overrides } from './options.js';
import { EXIT, runPrimary, START_TIMEOUT_MS } from './primary.js';
import { readTls } from './server.js';

export const USAGE = `Usage:
  unblock serve [config] [--port N] [--host ADDRESS] [--workers N|auto] [--threads N]
  unblock check [config]
  unblock --help | --version

config defaults to unblock.config.{yaml,yml,json,js,mjs} in the current folder.

serve   runs the config's servers; the flags override the config
          --port, --host   address of the server (a config with one server)
          --workers        processes: a number, or auto for one per CPU
          --threads        maxThreads of every worker pool
        SIGTERM/SIGINT: finish in-flight requests, close pools, exit 0 (twice: force)
        SIGHUP: reload code and config with a rolling restart
check   validates the config, builds its chain, loads its offload handlers and
        reads its TLS files without listening, prints it as a tree; exit code 0
        when valid, 1 when not`;

export interface ParsedCommand {
  command: 'serve' | 'check' | 'help' | 'version';
  config: string | undefined;
  overrides: Overrides;
}

/** Reads the command line (without `node` and the script). Throws UsageError. */
export function parseCommandLine(argv: readonly string[]): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string', short: 'H' },
        workers: { type: 'string', short: 'w' },
        threads: { type: 'string', short: 't' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help', config: undefined, overrides: {} };
  if (values.version) return { command: 'version', config: undefined, overrides: {} };
  const [command, config, ...rest] = positionals;
  if (command !== 'serve' && command !== 'check') {
    throw new UsageError(command === undefined ? 'no command given' : `unknown command "${command}"`);
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (config === '') throw new UsageError('the config is an empty string: give a file or a folder, or nothing for the default names');
  const overrides: Overrides = {};
  if (values.port !== undefined) overrides.port = integer('--port', values.port, 0, 65535);
  if (values.host !== undefined) {
    if (values.host === '') throw new UsageError('--host needs an address');
    overrides.host = values.host;
  }
  if (values.workers !== undefined) overrides.workers = values.workers === 'auto' ? 'auto' : integer('--workers', values.workers, 1, 1024);
  if (values.threads !== undefined) overrides.threads = integer('--threads', values.threads, 1, 1024);
  if (command === 'check' && Object.keys(overrides).length > 0) throw new UsageError('check takes no --port, --host, --workers or --threads');
  return { command, config, overrides };
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  return value;
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const log = createLogger();
  let command: ParsedCommand;
  try {
    command = parseCommandLine(argv);
  } catch (err) {
    process.stderr.write(`unblock: ${formatError(err)}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  try {
    switch (command.command) {
      case 'help':
        process.stdout.write(`${USAGE}\n`);
        return EXIT.ok;
      case 'version':
        process.stdout.write(`${(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version}\n`);
        return EXIT.ok;
      case 'check':
        return await check(command.config);
      case 'serve':
        return await runPrimary(findConfig(command.config), command.overrides, log);
    }
  } catch (err) {
    process.stderr.write(`unblock: ${formatError(err)}\n`);
    return (err as { code?: unknown }).code === 'UNBLOCK_ERR_CLI_USAGE' ? EXIT.usage : EXIT.failed;
  }
}

/** Validates and builds (imports every module, calls every factory) without listening, within `startTimeout` ms. */
export async function check(file: string | undefined, startTimeout = START_TIMEOUT_MS): Promise<number> {
  const path = findConfig(file);
  const config = await loadConfig(path);
  for (const server of config.servers) if (server.tls) readTls(server.tls);
  const built = await bounded(build(config), startTimeout);
  await built.close();
  await bounded(checkHandlers(config), startTimeout);
  process.stdout.write(`${path}: valid\n${formatTree(config)}\n`);
  return EXIT.ok;
}

/**
 * `building`, bounded as a worker's start is: an import (a top-level await)
 * or a factory that never settles fails with UNBLOCK_ERR_CLI_START rather
 * than hang, or end the process without a word when it waits on nothing.
 */
async function bounded<T>(building: Promise<T>, timeout: number): Promise<T> {
  const what = "a module's import (a top-level await) or a factory";
  let timer: NodeJS.Timeout | undefined;
  let onIdle: (() => void) | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StartError(`the chain was not built within ${timeout / 1000} s: ${what} never settles`)), timeout);
    // Not keeping the process alive itself, the timer lets a wait on nothing
    // empty the event loop, which tells at once that it can never end.
    timer.unref();
    onIdle = () => reject(new StartError(`the chain cannot be built: ${what} waits on nothing and can never settle`));
    process.once('beforeExit', onIdle);
  });
  try {
    return await Promise.race([building, stuck]);
  } finally {
    clearTimeout(timer);
    process.off('beforeExit', onIdle!);
  }
}
