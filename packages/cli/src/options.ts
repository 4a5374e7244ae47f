import type { LoadedConfig } from '@unblock/config';
import { UsageError } from './errors.js';

/** Command-line values that override the config. */
export interface Overrides {
  port?: number;
  host?: string;
  workers?: number | 'auto';
  threads?: number;
}

/** The config with the command line's overrides applied (a new object). */
export function applyOverrides(config: LoadedConfig, overrides: Overrides): LoadedConfig {
  const { port, host, workers, threads } = overrides;
  if ((port !== undefined || host !== undefined) && config.servers.length > 1) {
    throw new UsageError(`--port and --host apply to a config with one server; this one has ${config.servers.length}: set each server's address in the config`);
  }
  let pools = config.pools;
  if (threads !== undefined) {
    if (Object.keys(pools).length === 0) throw new UsageError('--threads: this config has no worker pool');
    pools = Object.fromEntries(Object.entries(pools).map(([name, options]) => [name, withThreads(options, threads)]));
  }
  return {
    ...config,
    workers: workers ?? config.workers,
    pools,
    servers: config.servers.map((server) => ({ ...server, port: port ?? server.port, host: host ?? server.host })),
  };
}

function withThreads(options: Record<string, unknown>, threads: number): Record<string, unknown> {
  const min = typeof options.minThreads === 'number' ? Math.min(options.minThreads, threads) : undefined;
  return { ...options, maxThreads: threads, ...(min === undefined ? {} : { minThreads: min }) };
}
