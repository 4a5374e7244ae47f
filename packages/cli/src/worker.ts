// A serving process: loads the config itself (so a restart loads new code and
// config), builds the chains, listens, and drains when the primary says so.
import cluster from 'node:cluster';
import { build, loadConfig, type BuiltApp } from '@unblock/config';
import { createLogger } from './log.js';
import { applyOverrides, type Overrides } from './options.js';
import { serve, type RunningServer } from './server.js';
import { formatError } from './format.js';

/** What the primary passes to each worker (in the environment). */
export interface WorkerSettings {
  config: string;
  overrides: Overrides;
  /**
   * The ports that servers configured with port 0 got at startup, by server
   * name: a worker started later (a crash restart, a reload) must listen on
   * the same one, not on a new free port.
   */
  pinnedPorts: Record<string, number>;
}

export type WorkerMessage =
  | { type: 'ready'; servers: { name: string; host: string; port: number }[] }
  /** `code`: the error's own, which the primary reports it with (`message` then leaves it out). */
  | { type: 'failed'; message: string; code?: string }
  | { type: 'closed' };
export type PrimaryMessage = { type: 'shutdown' } | { type: 'closed-ack' };

export const SETTINGS_VARIABLE = 'UNBLOCK_WORKER_SETTINGS';

export async function runWorker(): Promise<void> {
  const log = createLogger(undefined, { worker: cluster.worker?.id, pid: process.pid });
  const settings = JSON.parse(process.env[SETTINGS_VARIABLE] ?? '{}') as WorkerSettings;
  let app: BuiltApp | undefined;
  let servers: RunningServer[] = [];
  let stopping: Promise<void> | undefined;

  const stop = (shutdownTimeout: number) => {
    stopping ??= (async () => {
      // drain() stops accepting at once; the rest of it waits for the requests.
      const drained = Promise.all(servers.map((s) => s.drain(shutdownTimeout)));
      await primaryStoppedSending();
      const cut = await drained;
      const total = cut.reduce((a, b) => a + b, 0);
      if (total > 0) log.error(`shutdown: ${total} request(s) still running after shutdownTimeout were cut off`);
      await app?.close();
      process.exit(0);
    })();
    return stopping;
  };

  // The primary coordinates: a terminal's Ctrl+C or a SIGHUP reaches every
  // process of the group, and only the primary's word counts. A SIGTERM sent
  // to this process alone still drains it.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});

  // Until the config is loaded, a SIGTERM (how the primary stops a worker
  // that is not ready) ends this process at once: nothing is in flight yet.
  try {
    const configured = applyOverrides(await loadConfig(settings.config), settings.overrides ?? {});
    const loaded = { ...configured, servers: configured.servers.map((s) => (s.port === 0 && settings.pinnedPorts?.[s.name] !== undefined ? { ...s, port: settings.pinnedPorts[s.name]! } : s)) };
    process.on('SIGTERM', () => void stop(loaded.shutdownTimeout));
    process.on('message', (message: PrimaryMessage) => {
      if (message?.type === 'shutdown') void stop(loaded.shutdownTimeout);
    });
    // Without a primary there is nobody to restart or stop this process.
    process.on('disconnect', () => void stop(loaded.shutdownTimeout));

    app = await build(loaded);
    const built = app;
    const poolHealth = () => built.poolStats();
    servers = built.servers.map(({ config, chain }) => {
      // blockingThreshold: the chain reports each step (a mount as a whole) that held the event loop.
      chain.on('blocking', (info) => {
        log.error(`blocking: "${info.name}"${info.route === '/' ? '' : ` at ${info.route}`} held the event loop for ${info.duration.toFixed(1)} ms on ${info.method} ${info.url}`, { server: config.name });
      });
      return serve({ config, handler: chain, poolHealth });
    });
    const addresses = await Promise.all(servers.map((s) => s.listen()));
    await send({ type: 'ready', servers: servers.map((s, i) => ({ name: s.config.name, host: addresses[i]!.address, port: addresses[i]!.port })) });
  } catch (err) {
    // The primary reports it, once, as the reason the command failed.
    if (process.send === undefined) log.error(formatError(err));
    const { code } = err as { code?: unknown };
    await send(typeof code === 'string' && code.startsWith('UNBLOCK_ERR_') ? { type: 'failed', message: (err as Error).message, code } : { type: 'failed', message: formatError(err) });
    await app?.close().catch(() => {});
    process.exit(1);
  }
}

/**
 * Resolves once the primary will hand this worker no more connections. The
 * primary may have sent one just before it learnt that the servers closed:
 * a round trip on the same ordered channel delivers it first (and it is
 * refused, so the primary gives it to another worker), where an exit right
 * after closing would lose it and leave its client hanging.
 */
function primaryStoppedSending(): Promise<void> {
  if (process.send === undefined || !process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const onMessage = (message: PrimaryMessage) => {
      if (message?.type !== 'closed-ack') return;
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      resolve();
    };
    const onDisconnect = () => {
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
    process.once('disconnect', onDisconnect);
    void send({ type: 'closed' });
  });
}

/** Sends to the primary; resolves once the message is out (before an exit, so it is not lost). */
function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}
