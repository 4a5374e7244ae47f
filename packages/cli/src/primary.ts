// The primary process of `unblock serve`: forks the workers, restarts the
// ones that crash, rolls them over on SIGHUP and drains them on SIGTERM or
// SIGINT. It never loads app code itself, so a reload always starts clean
// processes with the code and config on disk.
import cluster, { type Worker } from 'node:cluster';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatAddress, formatTree, loadConfig, MAX_TIMER_MS, type LoadedConfig } from '@unblock/config';
import { StartError, WorkerStartError } from './errors.js';
import { formatError } from './format.js';
import type { Logger } from './log.js';
import { applyOverrides, type Overrides } from './options.js';
import { SETTINGS_VARIABLE, type PrimaryMessage, type WorkerMessage, type WorkerSettings } from './worker.js';

/** Exit codes of `unblock serve`. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

type Address = Extract<WorkerMessage, { type: 'ready' }>['servers'];

interface Managed {
  worker: Worker;
  startedAt: number;
  /** Set when the primary asked it to stop: its exit is expected. */
  retiring: boolean;
  /** Set once all its servers listen. */
  ready: boolean;
}

// Crash restarts back off from 100 ms to 10 s; a worker that stayed up for a
// minute resets the count.
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
const STABLE_AFTER_MS = 60_000;
// How long the primary waits for a worker's own drain past shutdownTimeout
// (closing pools, exiting) before it kills it.
const EXIT_GRACE_MS = 5_000;
/** A worker that has not listened by then (an import that never settles) is killed; `check` gives building its chains as long. */
export const START_TIMEOUT_MS = 60_000;

export async function runPrimary(configFile: string, overrides: Overrides, log: Logger): Promise<number> {
  let config = applyOverrides(await loadConfig(configFile), overrides);
  const live = new Set<Managed>();
  let crashes = 0;
  let shuttingDown = false;
  let reloading: Promise<void> | undefined;
  let reloadAgain = false;

  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)) });

  // Port 0 ("any free port") is chosen here, once: node:cluster shares a
  // listening socket between workers by address *as requested*, so workers
  // asking for port 0 at different times (a crash restart after the last
  // worker died, a reload) would otherwise not end up on the same port.
  const pinnedPorts: Record<string, number> = {};
  for (const server of config.servers) if (server.port === 0) pinnedPorts[server.name] = await freePort(server.host);
  const settings: WorkerSettings = { config: configFile, overrides, pinnedPorts };

  /** Forks a worker; `ready` resolves once all its servers listen, and rejects if it fails (or is stopped) first. */
  const start = (): { managed: Managed; ready: Promise<Address> } => {
    const worker = cluster.fork({ [SETTINGS_VARIABLE]: JSON.stringify(settings) });
    const managed: Managed = { worker, startedAt: Date.now(), retiring: false, ready: false };
    live.add(managed);
    // An IPC message to a worker that just died fails; its exit says the rest.
    worker.on('error', () => {});
    // See primaryStoppedSending() in worker.ts: by the time this arrives, the
    // cluster has taken the worker off its listening sockets.
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type === 'closed') send(worker, { type: 'closed-ack' });
    });
    const ready = new Promise<Address>((resolve, reject) => {
      let failure: { message: string; code?: string } = { message: 'exited before it was ready' };
      const timer = setTimeout(() => {
        failure = { message: `did not listen within ${START_TIMEOUT_MS / 1000} s` };
        worker.process.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      const onMessage = (message: WorkerMessage) => {
        if (message?.type === 'ready') {
          managed.ready = true;
          clearTimeout(timer);
          worker.off('exit', onEarlyExit);
          worker.off('message', onMessage);
          worker.on('exit', (code, signal) => onExit(managed, code, signal));
          resolve(message.servers);
        } else if (message?.type === 'failed') {
          failure = message;
        }
      };
      const onEarlyExit = () => {
        clearTimeout(timer);
        live.delete(managed);
        const message = `worker ${worker.id} failed to start: ${failure.message}`;
        reject(failure.code === undefined ? new StartError(message) : new WorkerStartError(message, failure.code));
      };
      worker.on('message', onMessage);
      worker.once('exit', onEarlyExit);
    });
    return { managed, ready };
  };

  const retire = (managed: Managed): Promise<void> => {
    managed.retiring = true;
    const exited = new Promise<void>((resolve) => {
      if (managed.worker.isDead()) resolve();
      else managed.worker.once('exit', () => resolve());
    });
    // A worker still loading its code may not listen for messages yet, and
    // would miss one; a signal reaches it at any point, and before it is
    // ready it has no request in flight to drain.
    if (managed.ready) send(managed.worker, { type: 'shutdown' });
    else managed.worker.process.kill('SIGTERM');
    // The config keeps shutdownTimeout within timer range; the grace must not push it past.
    const killer = setTimeout(() => managed.worker.process.kill('SIGKILL'), Math.min(config.shutdownTimeout + EXIT_GRACE_MS, MAX_TIMER_MS));
    return exited.finally(() => {
      clearTimeout(killer);
      live.delete(managed);
    });
  };

  const onExit = (managed: Managed, code: number | null, signal: string | null) => {
    live.delete(managed);
    if (managed.retiring || shuttingDown) return;
    if (Date.now() - managed.startedAt > STABLE_AFTER_MS) crashes = 0;
    log.error(`worker ${managed.worker.id} exited (${signal ?? `code ${code}`})`, { pid: managed.worker.process.pid });
    restartLater();
  };

  const count = (c: LoadedConfig) => (c.workers === 'auto' ? availableParallelism() : c.workers);
  /** The workers that serve or are starting to, and are not being stopped. */
  const running = () => [...live].filter((managed) => !managed.retiring).length;

  const restartLater = () => {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** crashes);
    crashes++;
    log.info(`restarting a worker in ${delay} ms`);
    setTimeout(topUp, delay);
  };

  /**
   * Starts the workers missing from the configured count. A restart is a
   * top-up rather than one worker per crash, so that a reload (which starts
   * a full set) and a crash around it do not both add one. During a reload
   * it waits: the reload tops up when it is done.
   */
  const topUp = () => {
    if (shuttingDown || reloading !== undefined) return;
    for (let missing = count(config) - running(); missing > 0; missing--) {
      const { managed, ready } = start();
      // A replacement that fails to start counts as one more crash.
      ready.catch((err: unknown) => {
        if (managed.retiring) return;
        log.error(formatError(err));
        restartLater();
      });
    }
  };

  const reload = async () => {
    let next: LoadedConfig;
    try {
      next = applyOverrides(await loadConfig(configFile), overrides);
    } catch (err) {
      log.error(`reload: the config is invalid, still serving the previous one\n${formatError(err)}`);
      return;
    }
    log.info('reload: starting new workers', { workers: count(next) });
    const old = [...live];
    config = next;
    const fresh: Managed[] = [];
    try {
      // Rolling: a new worker listens before an old one starts to drain, so
      // there is always a process accepting connections.
      for (let i = 0; i < Math.max(count(next), old.length) && !shuttingDown; i++) {
        if (i < count(next)) {
          const { managed, ready } = start();
          await ready;
          fresh.push(managed);
        }
        if (i < old.length) void retire(old[i]!);
      }
      if (!shuttingDown) log.info('reload: done', { workers: fresh.length });
    } catch (err) {
      // The old workers not yet retired keep serving, beside the new ones
      // that did start. (During a shutdown, starting workers are stopped.)
      if (!shuttingDown) log.error(`reload failed, keeping the workers that run\n${formatError(err)}`);
    }
  };

  const onHup = () => {
    if (shuttingDown) return;
    if (reloading !== undefined) {
      reloadAgain = true;
      return;
    }
    reloading = (async () => {
      do {
        reloadAgain = false;
        await reload();
      } while (reloadAgain && !shuttingDown);
      reloading = undefined;
      // Workers that crashed during the reload and were not replaced by it.
      topUp();
    })();
  };

  let ready = false;
  let resolveExit!: (code: number) => void;
  const exit = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const onStop = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      log.error(`${signal} again: forcing exit`);
      for (const managed of live) managed.worker.process.kill('SIGKILL');
      resolveExit(EXIT.failed);
      return;
    }
    shuttingDown = true;
    log.info(`${signal}: shutting down`, { inFlightTimeout: config.shutdownTimeout });
    // Every worker, old, new or still starting (a reload stops at once).
    void Promise.all([...live].map(retire)).then(() => {
      log.info('stopped');
      resolveExit(EXIT.ok);
    });
  };
  // Listening from the start: a signal while the workers start stops them too.
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', () => {
    if (ready) onHup();
  });

  // Start: every worker must come up, or the command fails.
  try {
    const started = await Promise.all(Array.from({ length: count(config) }, () => start().ready));
    // A signal while they started: they are being stopped, not served.
    if (shuttingDown) return exit;
    banner(log, configFile, config, started[0]!, started.length);
    ready = true;
  } catch (err) {
    // Stopped by a signal while starting: that stop decides the exit code.
    if (shuttingDown) return exit;
    shuttingDown = true;
    await Promise.all([...live].map(retire));
    throw err;
  }
  return exit;
}

function banner(log: Logger, file: string, config: LoadedConfig, servers: Address, workers: number): void {
  // The ports the servers got (port 0 means any free one).
  const actual: LoadedConfig = {
    ...config,
    servers: config.servers.map((s, i) => ({ ...s, port: servers[i]?.port ?? s.port })),
  };
  const urls = actual.servers.map((s) => ({ name: s.name, url: formatAddress(s), ...(s.health ? { health: s.health } : {}) }));
  log.block(
    `unblock: serving ${file} with ${workers} worker${workers === 1 ? '' : 's'} (primary pid ${process.pid})`,
    [...urls.map((u) => `  ${u.name}: ${u.url}${u.health ? `  (health ${u.url}${u.health})` : ''}`), '', formatTree(actual)].join('\n'),
    { event: 'listening', servers: urls, workers, pid: process.pid },
  );
}

/** A port free on `host` right now, from the system. */
async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, host, resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function send(worker: Worker, message: PrimaryMessage): void {
  if (worker.isConnected()) worker.send(message);
}
