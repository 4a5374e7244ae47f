import { existsSync } from 'node:fs';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ResourceLimits, Transferable } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { PoolClosedError, QueueFullError, WORKER_ERROR_WARNING_CODE, invalidOption, type WorkerPoolError } from './errors.js';
import {
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_QUEUE,
  DEFAULT_RETRY_AFTER,
  checkKnownKeys,
  checkObject,
  defaultMaxThreads,
  toDuration,
  toInteger,
  toResourceLimits,
  type Duration,
} from './options.js';
import type { Task, TaskResult, WorkerMessage } from './protocol.js';

export interface PoolOptions {
  /** Worker threads at most. Default `os.availableParallelism()`. */
  maxThreads?: number;
  /** Threads kept alive while idle. Default 1 (capped at `maxThreads`). */
  minThreads?: number;
  /** Requests that may wait for a free thread; beyond that, 503 + Retry-After at once. Default 256. */
  maxQueue?: number;
  /** How long a thread above `minThreads` may stay idle before it exits. Default 30 s. */
  idleTimeout?: Duration;
  /** `Retry-After` of the 503 responses (queue full, pool closed), rounded up to whole seconds. Default 1 s. */
  retryAfter?: Duration;
  /** Per-thread V8 limits; a thread exceeding them dies (its requests fail with 500) and is replaced. */
  resourceLimits?: ResourceLimits;
}

/** A histogram's summary, in milliseconds. */
export interface HistogramSummary {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface PoolStats {
  /** Live threads. */
  threads: number;
  maxThreads: number;
  /** Requests accepted and not finished: running plus waiting. */
  pending: number;
  /** Requests waiting for a thread. */
  queueSize: number;
  maxQueue: number;
  /** Fraction of the pool's capacity used since it started, 0–1 (piscina's utilization). */
  utilization: number;
  /** Tasks finished (successfully or not). */
  completed: number;
  /** How long requests waited for a thread. */
  queueWait: HistogramSummary;
  /** How long the handler ran, from thread pickup until its response ended. */
  runTime: HistogramSummary;
}

/** A pool of worker threads shared by any number of `offload()` middleware. Created by `createPool()`. */
export interface Pool {
  readonly maxThreads: number;
  readonly maxQueue: number;
  /** True once `close()` was called. */
  readonly closed: boolean;
  stats(): PoolStats;
  /** Refuses new requests (503), lets accepted ones finish, then stops the threads. */
  close(): Promise<void>;
}

// From src/ (tests, through tsx) and from dist/ alike, the worker entry is the
// compiled dist/worker.js: worker threads load plain JavaScript.
const WORKER_ENTRY = fileURLToPath(new URL('../dist/worker.js', import.meta.url));
const POOL_OPTIONS = ['maxThreads', 'minThreads', 'maxQueue', 'idleTimeout', 'retryAfter', 'resourceLimits'] as const;

/** What `offload()` needs from a pool. */
export interface TaskRunner {
  /** Why a new request cannot be accepted now, if it cannot. */
  admit(): WorkerPoolError | undefined;
  /** Runs the task; its response messages go to `onMessage` until `forget(task.id)`. */
  run(task: Task, transferList: Transferable[], onMessage: (message: WorkerMessage) => void): Promise<TaskResult>;
  forget(id: number): void;
  /** Ends the thread running a task that must stop now (the pool replaces it; its task fails). */
  terminate(threadId: number): void;
}

class WorkerPool implements Pool, TaskRunner {
  readonly maxThreads: number;
  readonly maxQueue: number;
  readonly #retryAfter: number;
  readonly #piscina: Piscina<Task, TaskResult>;
  readonly #queueWait: RecordableHistogram = createHistogram();
  readonly #runTime: RecordableHistogram = createHistogram();
  #pending = 0;
  /** Where each running request's response messages go, by task id. */
  readonly #listeners = new Map<number, (message: WorkerMessage) => void>();
  #closed = false;

  constructor(options: PoolOptions) {
    this.maxThreads = toInteger('createPool() maxThreads', options.maxThreads, defaultMaxThreads(), 1);
    const minThreads = toInteger('createPool() minThreads', options.minThreads, Math.min(1, this.maxThreads), 0);
    if (minThreads > this.maxThreads) throw invalidOption(`createPool() minThreads (${minThreads}) exceeds maxThreads (${this.maxThreads})`);
    this.maxQueue = toInteger('createPool() maxQueue', options.maxQueue, DEFAULT_MAX_QUEUE, 0);
    this.#retryAfter = Math.max(1, Math.ceil(toDuration('createPool() retryAfter', options.retryAfter, DEFAULT_RETRY_AFTER) / 1000));
    const resourceLimits = toResourceLimits(options.resourceLimits);
    if (!existsSync(WORKER_ENTRY)) throw new Error(`@unblock/worker-pool is not built: ${WORKER_ENTRY} is missing (run tsc --build)`);
    this.#piscina = new Piscina({
      filename: WORKER_ENTRY,
      maxThreads: this.maxThreads,
      minThreads,
      idleTimeout: toDuration('createPool() idleTimeout', options.idleTimeout, DEFAULT_IDLE_TIMEOUT),
      // Admission is counted here (see admit()).
      maxQueue: Infinity,
      concurrentTasksPerWorker: 1,
      // A task that cannot be handed to a worker keeps its place at the head
      // of the queue, so requests are served in arrival order; with the
      // default, it goes to the back and some requests starve. (Tasks are
      // given no AbortSignal: piscina queues those apart, newest first, while
      // no worker is ready. Tasks are cancelled through their STATE and by
      // terminating their thread instead.)
      stricterFIFO: true,
      // Idle workers wait for the next task in Atomics.wait: the fastest hand
      // over. A finished handler's leftover callbacks (a timer it did not
      // clear) run when its thread picks up its next task.
      atomics: 'sync',
      ...(resourceLimits ? { resourceLimits } : {}),
    });
    // Handlers' responses come on the workers' parentPorts, which piscina
    // re-emits here.
    this.#piscina.on('message', (message: WorkerMessage) => this.#listeners.get(message.id)?.(message));
    // An error no task can be blamed for (thrown between requests). Without
    // a listener it would crash the server.
    this.#piscina.on('error', (err: unknown) => {
      process.emitWarning(`a worker thread failed between requests: ${err instanceof Error ? err.stack : String(err)}`, {
        code: WORKER_ERROR_WARNING_CODE,
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  admit(): WorkerPoolError | undefined {
    if (this.#closed) return new PoolClosedError(this.#retryAfter);
    if (this.#pending >= this.maxThreads + this.maxQueue) return new QueueFullError(this.maxQueue, this.#retryAfter);
    return undefined;
  }

  forget(id: number): void {
    this.#listeners.delete(id);
  }

  async run(task: Task, transferList: Transferable[], onMessage: (message: WorkerMessage) => void): Promise<TaskResult> {
    this.#listeners.set(task.id, onMessage);
    this.#pending++;
    try {
      const result = await this.#piscina.run(task, { transferList: transferList as never });
      this.#queueWait.record(toMicroseconds(result.queueWait));
      this.#runTime.record(toMicroseconds(result.runTime));
      return result;
    } finally {
      this.#pending--;
    }
  }

  terminate(threadId: number): void {
    void this.#piscina.threads.find((thread) => thread.threadId === threadId)?.terminate();
  }

  stats(): PoolStats {
    return {
      threads: this.#piscina.threads.length,
      maxThreads: this.maxThreads,
      pending: this.#pending,
      queueSize: this.#piscina.queueSize,
      maxQueue: this.maxQueue,
      utilization: this.#piscina.utilization,
      completed: this.#piscina.completed,
      queueWait: summarize(this.#queueWait),
      runTime: summarize(this.#runTime),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#piscina.close();
  }
}

/**
 * Creates a pool of worker threads (piscina) for `offload()`. Bounded by
 * default: `maxQueue` waiting requests, idle threads exit after
 * `idleTimeout`, requests are served in arrival order.
 */
export function createPool(options?: PoolOptions): Pool {
  const checked = checkObject('createPool()', options);
  checkKnownKeys('createPool()', checked, POOL_OPTIONS);
  return new WorkerPool(checked as PoolOptions);
}

/** The pool's side of `offload()`; undefined for a value that is not a pool from `createPool()`. */
export function asRunner(pool: unknown): TaskRunner | undefined {
  return pool instanceof WorkerPool ? pool : undefined;
}

// perf_hooks histograms hold integers >= 1: microseconds keep sub-ms detail.
function toMicroseconds(milliseconds: number): number {
  return Math.max(1, Math.round(milliseconds * 1000));
}

function summarize(histogram: RecordableHistogram): HistogramSummary {
  if (histogram.count === 0) return { count: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0 };
  const ms = (microseconds: number): number => microseconds / 1000;
  return {
    count: histogram.count,
    min: ms(histogram.min),
    max: ms(histogram.max),
    mean: ms(histogram.mean),
    p50: ms(histogram.percentile(50)),
    p90: ms(histogram.percentile(90)),
    p99: ms(histogram.percentile(99)),
  };
}
