// Runs the real `unblock` command as a child process, as a user would.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The built command: tests run what users run (npm test builds first). */
export const BIN = join(here, '..', 'dist', 'bin.js');

/** A folder with the fixture app, its VERSION file and the given config. */
export function project(config: string, { version = 'v1', name = 'unblock.config.yaml' } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'unblock-cli-'));
  copyFileSync(join(here, 'fixtures', 'app.js'), join(dir, 'app.js'));
  for (const file of ['broken-app.js', 'busy.js', 'slow-start.js']) copyFileSync(join(here, 'fixtures', file), join(dir, file));
  writeFileSync(join(dir, 'VERSION'), version);
  writeFileSync(join(dir, name), config);
  return dir;
}

export interface Run {
  child: ChildProcess;
  /** Every line the command printed, on stdout or stderr, parsed when it is JSON. */
  events: Record<string, unknown>[];
  stdout(): string;
  stderr(): string;
  /** Resolves with the first event that matches, or rejects after `ms`. */
  waitFor(match: (event: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal), or rejects after `ms`. */
  exited(ms?: number): Promise<number | string>;
}

export function run(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, UNBLOCK_LOG_FORMAT: 'json', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const events: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  // Each stream's complete lines, parsed; a line that is not JSON is kept as text.
  const reader = (append: (chunk: string) => string) => {
    let rest = '';
    return (chunk: string) => {
      append(chunk);
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        try {
          events.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          events.push({ text: line });
        }
      }
      for (const wake of waiters) wake();
    };
  };
  child.stdout!.setEncoding('utf8').on('data', reader((chunk) => (out += chunk)));
  child.stderr!.setEncoding('utf8').on('data', reader((chunk) => (err += chunk)));
  const exit = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    events,
    stdout: () => out,
    stderr: () => err,
    waitFor(match, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (found === undefined) return false;
          cleanup();
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching output within ${ms} ms\nstdout:\n${out}\nstderr:\n${err}`));
        }, ms);
        const onExit = () => {
          if (!check()) {
            cleanup();
            reject(new Error(`exited before the expected output\nstdout:\n${out}\nstderr:\n${err}`));
          }
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', onExit);
        };
        waiters.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    exited(ms = 20_000) {
      return Promise.race([
        exit,
        new Promise<never>((_, reject) =>
          setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`did not exit within ${ms} ms\nstdout:\n${out}\nstderr:\n${err}`));
          }, ms).unref(),
        ),
      ]);
    },
  };
}

/** The URL of the first server, from the startup event. */
export async function listening(r: Run, server = 0): Promise<string> {
  const event = await r.waitFor((e) => e.event === 'listening');
  return (event.servers as { url: string }[])[server]!.url;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The pids of the processes the command forked (its workers, starting, serving or draining). */
export function workerPids(r: Run): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(r.child.pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}
