import { existsSync } from 'node:fs';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, type MessagePort, type ResourceLimits, type Transferable } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { PoolClosedError, QueueFullError, WORKER_ERROR_WARNING_CODE, WorkerStartError, invalidOption, type WorkerPoolError } from './errors.js';
import {
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_QUEUE,
  DEFAULT_NICE,
  DEFAULT_RETRY_AFTER,
  checkKnownKeys,
  checkObject,
  defaultMaxThreads,
  toDuration,
  toInteger,
  toResourceLimits,
  type Duration,
} from './options.js';
import { ABORTED, MAX_NICE, STATE, THREAD, WIRE_DATA, endsResponse, fromWireData, fromWireSettled, now, takeResult, toWire, type LaneInit, type LaneMessage, type LaneRequest, type SerializedError, type Task, type TaskResult, type WireTask, type WorkerMessage } from './protocol.js';

export interface PoolOptions {
  /** Worker threads at most. Default `os.availableParallelism()`. */
  maxThreads?: number;
  /** Threads kept alive while idle. Default 1 (capped at `maxThreads`). */
  minThreads?: number;
  /** Requests that may wait for a free thread; beyond that, 503 + Retry-After at once. Default 256. */
  maxQueue?: number;
  /** How long a thread above `minThreads` may stay idle before it exits. Default 30 s. */
  idleTimeout?: Duration;
  /** `Retry-After` of the 503 responses (queue full, pool closed, threads that cannot start), rounded up to whole seconds. Default 1 s. */
  retryAfter?: Duration;
  /** Per-thread V8 limits; a thread exceeding them dies (its requests fail with 500) and is replaced. */
  resourceLimits?: ResourceLimits;
  /** How many nice levels below the main thread the worker threads run (Linux), so the event loop gets a core first. Default 6; 0 keeps them level. */
  nice?: number;
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
  /** Fraction of the pool's capacity used since it started, 0–1: handlers' run time over maxThreads × its lifetime. */
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
const POOL_OPTIONS = ['maxThreads', 'minThreads', 'maxQueue', 'idleTimeout', 'retryAfter', 'resourceLimits', 'nice'] as const;

/**
 * Requests a lane may hold while every lane is busy: the one its thread
 * runs and three behind it, which the thread then starts without a round
 * trip through this thread. Only requests that transfer nothing wait in a
 * lane, so one can still be taken back. Measured with a trivial handler, 2
 * threads: two deep, a thread that finished its two slept until this thread
 * had read their results and posted more, while requests waited here; four
 * deep, 8 connections keep both threads fed (about a fifth more req/s, a
 * sixth less CPU per request on this thread and over all threads; a third
 * more req/s at 32). Eight deep gained nothing more at 8 connections and
 * lost a third of the req/s at 32, sixteen deep half.
 */
const LANE_DEPTH = 4;
/**
 * A request goes to a thread that is already running rather than waking
 * another while what its lane holds is expected to take less than this
 * (the sum of their modules' mean run times, see #laneFor). A wake-up costs
 * both threads more than a short handler runs: measured with a trivial
 * handler on 2 threads, keeping it on one lane cut CPU per request on this
 * thread by about a tenth and over all threads by a fifth. A request waits
 * this long at most for the sake of it. A module not measured yet counts
 * this much: nothing is put behind it.
 */
const BACKLOG_MS = 0.5;
/** Requests a lane may hold for BACKLOG_MS's sake, however short they run: one message stays small. */
const LANE_CAP = 32;
/** Weight of each run time in a module's mean (see #runTimes): recent ones count most. */
const RUN_TIME_WEIGHT = 0.1;
/**
 * How long a lane with nothing to do stays open. Short: an open lane keeps
 * its thread busy for piscina (it neither retires nor lets the process exit),
 * and reopening one costs a single piscina task.
 */
const LANE_LINGER_MS = 100;
/**
 * How long a lane's running request may hold up the ones waiting behind it
 * before they go to another thread, ahead of newer requests (a slow or
 * stuck handler must not starve them, nor a short handler's module that ran
 * long this once). Long enough that a lane keeps what it was given in the
 * common case: a steal costs a message.
 */
const LANE_PATIENCE_MS = 20;
/**
 * Threads that die before taking a lane, in a row, after which the pool
 * fails the requests that wait for one and refuses new ones for `retryAfter`
 * (piscina itself does not report a thread that cannot start: its requests
 * would wait for their timeout, or forever without one).
 */
const START_ATTEMPTS = 3;

/** What `offload()` needs from a pool. */
export interface TaskRunner {
  /** Why a new request cannot be accepted now, if it cannot. */
  admit(): WorkerPoolError | undefined;
  /**
   * Runs the task and returns its id (also set as `task.id`): its response
   * messages go to `listener` until `forget(id)`. `slots` views
   * `task.credit`: the caller's own view, one allocation less per request.
   */
  run(task: Task, slots: Int32Array, transferList: Transferable[], listener: TaskListener): number;
  forget(id: number): void;
  /** Ends the thread running a task that must stop now (the pool replaces it; its task fails). */
  terminate(threadId: number): void;
}

/** Where a task's messages and its end go: offload()'s relay. */
export interface TaskListener {
  onMessage(message: WorkerMessage): void;
  /** Called once, with the task's result or why it failed (its thread died, say). */
  onSettled(err: unknown, result?: TaskResult): void;
}

/** A request accepted by the pool and not yet settled. */
interface Entry {
  task: Task;
  transferList: Transferable[];
  /** The slots of the request's SharedArrayBuffer (CREDIT, STATE, THREAD, WINDOW, TASK_END). */
  slots: Int32Array;
  listener: TaskListener;
  /** Its place in arrival order (ids are not: their slots are reused). */
  arrival: number;
  /** How long it is expected to run, ms: its module's mean run time when it arrived. */
  expected: number;
  /** Its lane's thread died before starting it once already: a second time, it fails. */
  orphaned: boolean;
  /** Its end was handed to the listener; it stays until forget(), for messages its dead thread posted before. */
  settled: boolean;
}

/**
 * Where an id occupies a slot of RequestTable: below it, the slot; above,
 * how often the slot was reused. Far more slots than requests can be in
 * flight (each holds a response ring of its own).
 */
const SLOTS = 2 ** 24;
/** Reuses of a slot before its ids repeat: ids stay safe integers, and a message is never that late. */
const GENERATIONS = 2 ** 28;

/**
 * The requests the pool has accepted and not forgotten, by id. Not a Map: a
 * Map that gains and loses an entry per request rebuilds its table every few
 * requests, and once the Map has lived long enough to be in V8's old
 * generation, so are the tables it discards, each still pointing at the
 * requests it held. A young-generation GC keeps whatever an old object points
 * at, so every request stayed alive until the next full GC (measured: whole
 * requests promoted, megabytes per collection, collections ten times longer,
 * the main thread's CPU per request 10–19 % higher). Here an array of slots
 * holds the live ones only; a slot's id changes at every reuse, so a late
 * message of a forgotten request finds nothing.
 */
export class RequestTable<T> {
  readonly #entries: (T | undefined)[] = [];
  readonly #ids: number[] = [];
  readonly #free: number[] = [];

  add(entry: T): number {
    const slot = this.#free.pop() ?? this.#ids.length;
    const generation = slot < this.#ids.length ? (Math.floor(this.#ids[slot]! / SLOTS) + 1) % GENERATIONS : 0;
    const id = generation * SLOTS + slot;
    this.#ids[slot] = id;
    this.#entries[slot] = entry;
    return id;
  }

  get(id: number): T | undefined {
    const slot = id % SLOTS;
    return this.#ids[slot] === id ? this.#entries[slot] : undefined;
  }

  delete(id: number): void {
    const slot = id % SLOTS;
    if (this.#ids[slot] !== id || this.#entries[slot] === undefined) return;
    this.#entries[slot] = undefined;
    this.#free.push(slot);
  }
}

/**
 * One thread's standing connection: a piscina task that runs for as long as
 * requests keep coming, taking them from its own MessagePort one at a time.
 * Per request that is one message each way and no piscina bookkeeping; a
 * thread that has its next request already waiting needs no wake-up.
 */
class Lane {
  readonly port: MessagePort;
  /** Its thread took it (see LaneOpened). */
  opened = false;
  /** Given up before its thread took it: the pool's threads fail to start. */
  readonly #abandon = new AbortController();
  /** In the order given; the first is running or about to. */
  readonly entries: Entry[] = [];
  /** The sum of `entries`' expected run times, ms. */
  backlog = 0;
  closed = false;
  /** When the first of `entries` last changed (performance.now()): since then its head runs, or the lane is idle. */
  since = 0;
  /** Closes the lane once it has been idle for LANE_LINGER_MS; one timer per idle stretch, not per request. */
  #linger: NodeJS.Timeout | undefined;
  /** Given and not yet posted. */
  readonly #outbox: Entry[] = [];
  /** Settles once the lane's piscina task ended and the pool has heard of it. */
  readonly ended: Promise<void>;

  constructor(
    readonly pool: WorkerPool,
    piscina: Piscina<LaneInit, void>,
    nice: number,
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    port1.on('message', (message: LaneMessage) => {
      pool.onLaneMessage(this, message);
      // What else is queued is taken here, without an event and a callback each.
      for (let next = receiveMessageOnPort(port1); next; next = receiveMessageOnPort(port1)) pool.onLaneMessage(this, next.message as LaneMessage);
    });
    this.ended = piscina.run({ port: port2, nice }, { transferList: [port2] as never, signal: this.#abandon.signal }).then(
      () => pool.onLaneEnd(this, undefined),
      (err: unknown) => pool.onLaneEnd(this, err),
    );
  }

  give(entry: Entry, claim: number): void {
    entry.task.claim = claim;
    Atomics.store(entry.slots, THREAD, claim);
    if (this.entries.length === 0) this.since = performance.now();
    this.entries.push(entry);
    this.backlog += entry.expected;
    if (this.#outbox.length === 0) this.pool.toFlush(this);
    this.#outbox.push(entry);
  }

  /** Posts what was given since the last flush in one message: a thread woken once takes them all. */
  flush(): void {
    if (this.#outbox.length === 0) return;
    const tasks: WireTask[] = [];
    const transferList: Transferable[] = [];
    for (const entry of this.#outbox) {
      tasks.push(toWire(entry.task));
      // Only a request with a body to move has any.
      for (const item of entry.transferList) transferList.push(item);
    }
    this.#outbox.length = 0;
    const request: LaneRequest = tasks;
    this.port.postMessage(request, transferList as never);
  }

  take(entry: Entry): void {
    // Nearly always the first: the one that just ended.
    const index = this.entries[0] === entry ? 0 : this.entries.indexOf(entry);
    if (index === 0) this.entries.shift();
    else this.entries.splice(index, 1);
    // Reset when empty: sums and differences of fractions drift.
    this.backlog = this.entries.length === 0 ? 0 : this.backlog - entry.expected;
    if (index === 0) this.since = performance.now();
    // Taken back before it was posted.
    const unposted = this.#outbox.length === 0 ? -1 : this.#outbox.indexOf(entry);
    if (unposted !== -1) this.#outbox.splice(unposted, 1);
    if (this.entries.length === 0 && !this.closed) this.#linger ??= setTimeout(this.#lingered, LANE_LINGER_MS);
  }

  readonly #lingered = (): void => {
    this.#linger = undefined;
    if (this.entries.length > 0 || this.closed) return;
    const left = this.since + LANE_LINGER_MS - performance.now();
    if (left > 0) this.#linger = setTimeout(this.#lingered, left);
    else this.close();
  };

  /** Withdraws the piscina task of a lane no thread took: onLaneEnd follows. */
  abandon(): void {
    this.close();
    this.#abandon.abort();
    // Its other end never left this thread: it would keep the process alive.
    this.port.close();
  }

  /** Takes no more requests; its thread ends the lane once the last one is done. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#linger);
    const request: LaneRequest = 'quit';
    this.port.postMessage(request);
    this.pool.onLaneClosed(this);
  }
}

class WorkerPool implements Pool, TaskRunner {
  readonly maxThreads: number;
  readonly maxQueue: number;
  readonly #retryAfter: number;
  readonly #nice: number;
  readonly #piscina: Piscina<LaneInit, void>;
  readonly #queueWait: RecordableHistogram = createHistogram();
  readonly #runTime: RecordableHistogram = createHistogram();
  readonly #startedAt = performance.now();
  #busyTime = 0;
  #completed = 0;
  #pending = 0;
  /** Accepted requests no lane holds yet, in arrival order. */
  readonly #queue: Entry[] = [];
  /** Lanes open to new requests. */
  readonly #lanes: Lane[] = [];
  /** Every lane whose piscina task has not ended, open or closing. */
  readonly #running = new Set<Lane>();
  /** Each request from run() until forget(): where its response messages go. */
  readonly #requests = new RequestTable<Entry>();
  #lastClaim = 0;
  /** Requests accepted so far: each one's `arrival`. */
  #arrivals = 0;
  /** Each module's mean run time, ms: how long a request to it is expected to keep its thread (see #laneFor). */
  readonly #runTimes = new Map<string, number>();
  /** While requests wait behind running ones by choice (see #laneFor): checks that none is held up there. */
  #patrol: NodeJS.Timeout | undefined;
  /** Lanes with requests to post once this turn of the event loop has read every request that arrived. */
  readonly #toFlush: Lane[] = [];
  #closed = false;
  /** Threads that died in a row while a lane waited for one to take it. */
  #startFailures = 0;
  /** While new requests are refused (until #retryAt): what killed the last thread that failed to start. */
  #startFailure: { cause: unknown } | undefined;
  #retryAt = 0;
  /** Resolves the wait of close() for the requests it lets finish. */
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: PoolOptions) {
    this.maxThreads = toInteger('createPool() maxThreads', options.maxThreads, defaultMaxThreads(), 1);
    const minThreads = toInteger('createPool() minThreads', options.minThreads, Math.min(1, this.maxThreads), 0);
    if (minThreads > this.maxThreads) throw invalidOption(`createPool() minThreads (${minThreads}) exceeds maxThreads (${this.maxThreads})`);
    this.maxQueue = toInteger('createPool() maxQueue', options.maxQueue, DEFAULT_MAX_QUEUE, 0);
    this.#retryAfter = Math.max(1, Math.ceil(toDuration('createPool() retryAfter', options.retryAfter, DEFAULT_RETRY_AFTER) / 1000));
    this.#nice = toInteger('createPool() nice', options.nice, DEFAULT_NICE, 0, MAX_NICE);
    const resourceLimits = toResourceLimits(options.resourceLimits);
    if (!existsSync(WORKER_ENTRY)) throw new Error(`@unblock/worker-pool is not built: ${WORKER_ENTRY} is missing (run tsc --build)`);
    this.#piscina = new Piscina({
      filename: WORKER_ENTRY,
      maxThreads: this.maxThreads,
      minThreads,
      idleTimeout: toDuration('createPool() idleTimeout', options.idleTimeout, DEFAULT_IDLE_TIMEOUT),
      // Piscina runs one lane per thread, never more than maxThreads: requests
      // queue here, in arrival order.
      maxQueue: Infinity,
      concurrentTasksPerWorker: 1,
      // A thread between lanes keeps its event loop running, so a finished
      // handler's leftover callbacks (a timer it did not clear) still run.
      atomics: 'disabled',
      ...(resourceLimits ? { resourceLimits } : {}),
    });
    // An error no lane can be blamed for. Without a listener it would crash the server.
    this.#piscina.on('error', (err: unknown) => this.#onThreadError(err));
  }

  get closed(): boolean {
    return this.#closed;
  }

  admit(): WorkerPoolError | undefined {
    if (this.#closed) return new PoolClosedError(this.#retryAfter);
    if (this.#startFailure && performance.now() < this.#retryAt) return new WorkerStartError(this.#startFailure.cause, this.#retryAfter);
    if (this.#pending >= this.maxThreads + this.maxQueue) return new QueueFullError(this.maxQueue, this.#retryAfter);
    return undefined;
  }

  forget(id: number): void {
    this.#requests.delete(id);
  }

  run(task: Task, slots: Int32Array, transferList: Transferable[], listener: TaskListener): number {
    this.#pending++;
    const entry: Entry = {
      task,
      transferList,
      slots,
      listener,
      arrival: ++this.#arrivals,
      expected: this.#runTimes.get(task.module) ?? BACKLOG_MS,
      orphaned: false,
      settled: false,
    };
    task.id = this.#requests.add(entry);
    this.#queue.push(entry);
    this.#dispatch();
    return task.id;
  }

  terminate(threadId: number): void {
    void this.#piscina.threads.find((thread) => thread.threadId === threadId)?.terminate();
  }

  /** Gives queued requests to lanes, oldest first, opening lanes up to maxThreads. */
  #dispatch(): void {
    while (this.#queue.length > 0) {
      const entry = this.#queue[0]!;
      if (Atomics.load(entry.slots, STATE) === ABORTED) {
        // Timed out or abandoned while it waited: settled without a thread.
        this.#queue.shift();
        this.#settle(entry, { queueWait: now() - entry.task.enqueuedAt, runTime: 0, loading: 0 });
        continue;
      }
      const lane = this.#laneFor(entry);
      if (!lane) return;
      this.#queue.shift();
      lane.give(entry, this.#nextClaim());
    }
  }

  /**
   * A running lane (its thread took it and runs a request, for less than
   * LANE_PATIENCE_MS so far) whose thread will reach the request soon (what
   * it holds is expected to take less than BACKLOG_MS): the fullest such
   * lane, so that the others drain and their threads sleep. Else an idle
   * lane, else a new one, else one with room for a request that can still
   * be taken back. Only a request that transfers nothing is put behind
   * others: it can be taken back.
   */
  #laneFor(entry: Entry): Lane | undefined {
    const movable = entry.transferList.length === 0;
    // Read once, and only when some lane needs it: a clock read costs as much as the rest of this loop.
    let heldUp: number | undefined;
    let soon: Lane | undefined;
    let emptiest: Lane | undefined;
    for (const lane of this.#lanes) {
      const waiting = lane.entries.length;
      if (!emptiest || waiting < emptiest.entries.length) emptiest = lane;
      // Not running, full, expected to stay busy, or no fuller than the one found.
      if (!movable || !lane.opened || waiting === 0 || waiting >= LANE_CAP || lane.backlog >= BACKLOG_MS || (soon && waiting <= soon.entries.length)) continue;
      // Nor held up by a run that turned out long.
      if (lane.since > (heldUp ??= performance.now() - LANE_PATIENCE_MS)) soon = lane;
    }
    if (soon) {
      this.#patrol ??= setTimeout(this.#onPatrol, LANE_PATIENCE_MS).unref();
      return soon;
    }
    if (emptiest?.entries.length === 0) return emptiest;
    if (this.#running.size < this.maxThreads) return this.#openLane();
    if (emptiest && movable && emptiest.entries.length < LANE_DEPTH) return emptiest;
    return undefined;
  }

  #openLane(): Lane {
    const lane = new Lane(this, this.#piscina, this.#nice);
    this.#lanes.push(lane);
    this.#running.add(lane);
    return lane;
  }

  /**
   * Requests put behind a running one (see #laneFor) whose run turned out
   * long: idle lanes, and new ones while threads are left, take them over,
   * oldest first, one each and the rest behind the last, so that requests
   * that come later go behind them.
   */
  readonly #onPatrol = (): void => {
    this.#patrol = undefined;
    let into: Lane | undefined;
    for (let held = this.#takeable(undefined, true); held; held = this.#takeable(undefined, true)) {
      into = this.#lanes.find((lane) => lane.entries.length === 0) ?? (this.#running.size < this.maxThreads ? this.#openLane() : into);
      if (!into || !this.#move(held, into)) break;
    }
    if (this.#lanes.some((lane) => lane.entries.length > 1)) this.#patrol = setTimeout(this.#onPatrol, LANE_PATIENCE_MS).unref();
  };

  /**
   * Takes back the oldest request waiting in another lane that its thread has
   * not started, and gives it to `into`: when `into` ran dry, any that
   * #takeable allows; when it only has room, one that its lane's running
   * request has held up for LANE_PATIENCE_MS. Lanes hold only requests older
   * than any still queued, so this keeps arrival order.
   */
  #steal(into: Lane, heldOnly: boolean): void {
    const found = this.#takeable(into, heldOnly);
    if (found) this.#move(found, into);
  }

  /**
   * The oldest request waiting in a lane other than `except` that can be
   * taken back: held up there for LANE_PATIENCE_MS, or (unless `heldOnly`)
   * expected to wait BACKLOG_MS or more where it is, or waiting for a
   * thread to take its lane. One that #laneFor put behind a running request
   * stays until it is held up: moving it sooner would cost the wake-up it
   * was put there to save.
   */
  #takeable(except: Lane | undefined, heldOnly: boolean): { lane: Lane; entry: Entry } | undefined {
    let heldUp: number | undefined;
    let oldest: { lane: Lane; entry: Entry } | undefined;
    for (const lane of this.#lanes) {
      if (lane === except || lane.entries.length === 0) continue;
      const held = lane.since <= (heldUp ??= performance.now() - LANE_PATIENCE_MS);
      if (heldOnly && !held) continue;
      // What runs before it there, expected.
      let ahead = 0;
      for (const entry of lane.entries) {
        const soon = !held && lane.opened && ahead < BACKLOG_MS;
        ahead += entry.expected;
        if (soon || entry.transferList.length > 0 || Atomics.load(entry.slots, THREAD) >= 0 || (oldest && entry.arrival > oldest.entry.arrival)) continue;
        oldest = { lane, entry };
      }
    }
    return oldest;
  }

  /** Moves a request from its lane to another; fails when its thread claimed it in the meantime. */
  #move({ lane, entry }: { lane: Lane; entry: Entry }, into: Lane): boolean {
    const claim = this.#nextClaim();
    if (Atomics.compareExchange(entry.slots, THREAD, entry.task.claim, claim) !== entry.task.claim) return false;
    lane.take(entry);
    into.give(entry, claim);
    return true;
  }

  toFlush(lane: Lane): void {
    if (this.#toFlush.length === 0) setImmediate(this.#flush);
    this.#toFlush.push(lane);
  }

  readonly #flush = (): void => {
    // Flushing gives no lane anything new: the list does not grow meanwhile.
    try {
      for (const lane of this.#toFlush) lane.flush();
    } finally {
      this.#toFlush.length = 0;
    }
  };

  /** While a request waits in a lane, THREAD holds its claim: negative, new at every hand-over. */
  #nextClaim(): number {
    this.#lastClaim = (this.#lastClaim % 0x7fffffff) + 1;
    return -this.#lastClaim;
  }

  onLaneMessage(lane: Lane, message: LaneMessage): void {
    if (!Array.isArray(message)) {
      if (message.type === 'opened') {
        lane.opened = true;
        this.#startFailures = 0;
        this.#startFailure = undefined;
      } else {
        this.#onWorkerMessage(lane, message);
      }
      return;
    }
    if (message[0] === WIRE_DATA) {
      this.#onWorkerMessage(lane, fromWireData(message));
      return;
    }
    const { id, result, error } = fromWireSettled(message);
    const entry = this.#requests.get(id);
    if (!entry || entry.settled) return;
    this.#taskEnded(lane, entry, result, error);
  }

  #onWorkerMessage(lane: Lane, message: WorkerMessage): void {
    const entry = this.#requests.get(message.id);
    if (!entry) return;
    entry.listener.onMessage(message);
    // The task may be over already, its end left beside the request (see TASK_END).
    if (!entry.settled && endsResponse(message)) {
      const result = takeResult(entry.slots);
      if (result) this.#taskEnded(lane, entry, result);
    }
  }

  /** A task ran to its end on `lane`'s thread: with its result, or the error that ended it there. */
  #taskEnded(lane: Lane, entry: Entry, result: TaskResult | undefined, error?: SerializedError): void {
    lane.take(entry);
    if (result) {
      this.#queueWait.record(toMicroseconds(result.queueWait));
      this.#runTime.record(toMicroseconds(result.runTime));
      this.#busyTime += result.runTime;
      // A thread's first request to a module also loaded it: that is not how long the next one will run.
      if (result.runTime > 0) this.#recordRunTime(entry.task.module, result.runTime - result.loading);
      this.#settle(entry, result);
    } else {
      this.#settle(entry, undefined, error);
    }
    if (!lane.closed) this.#steal(lane, true);
    this.#dispatch();
    if (lane.entries.length === 0 && !lane.closed) this.#steal(lane, false);
  }

  #recordRunTime(module: string, runTime: number): void {
    const mean = this.#runTimes.get(module);
    this.#runTimes.set(module, mean === undefined ? runTime : mean + (runTime - mean) * RUN_TIME_WEIGHT);
  }

  /** The lane's thread stopped: it was quit, or it died (crash, terminate(), resource limits). */
  onLaneEnd(lane: Lane, err: unknown): void {
    this.#running.delete(lane);
    // A dead thread's lane: the quit goes nowhere. Its port closes with its
    // peer, after delivering what the thread posted before it died.
    lane.close();
    const requeued: Entry[] = [];
    let blamed = false;
    for (const entry of lane.entries.splice(0)) {
      if (Atomics.load(entry.slots, THREAD) > 0 || entry.transferList.length > 0 || entry.orphaned) {
        // It ran there, or cannot be sent again, or it lost a thread before
        // already (threads that keep dying must not keep it for ever).
        blamed = true;
        this.#settle(entry, undefined, err ?? new Error('the worker thread stopped'));
      } else {
        entry.orphaned = true;
        requeued.push(entry);
      }
    }
    if (err !== undefined && !blamed && lane.opened) warnWorkerError(err);
    this.#requeue(requeued);
    this.#dispatch();
  }

  /**
   * Requests a lane held and no thread started: they keep their places, ahead
   * of everything queued (a lane holds only older requests), in arrival order
   * (`arrival`).
   */
  #requeue(entries: Entry[]): void {
    this.#queue.unshift(...entries.sort((a, b) => a.arrival - b.arrival));
  }

  /**
   * A thread died outside any lane: between requests (a handler's leftover
   * work threw), or while starting. Piscina starts no other thread for the
   * lanes that waited for that one: they are withdrawn and their requests
   * given to new lanes, START_ATTEMPTS times in a row at most; then the
   * requests waiting for a thread fail, and new ones are refused for
   * `retryAfter`.
   */
  #onThreadError(err: unknown): void {
    const waiting = [...this.#running].filter((lane) => !lane.opened);
    if (waiting.length === 0) {
      warnWorkerError(err);
      return;
    }
    const stranded: Entry[] = [];
    // A lane's 'opened' may still be on its way when its thread already took
    // a request: that one ran (and may have left its end, see TASK_END), so
    // it stops with its thread rather than run again.
    const ran: Entry[] = [];
    for (const lane of waiting) {
      for (const entry of lane.entries.splice(0)) (Atomics.load(entry.slots, THREAD) > 0 ? ran : stranded).push(entry);
      // Its end (onLaneEnd) opens new lanes for what is queued.
      lane.abandon();
    }
    if (++this.#startFailures < START_ATTEMPTS) {
      this.#requeue(stranded);
    } else {
      this.#startFailures = 0;
      this.#startFailure = { cause: err };
      this.#retryAt = performance.now() + this.#retryAfter * 1000;
      for (const entry of [...stranded, ...this.#queue.splice(0)]) this.#settle(entry, undefined, new WorkerStartError(err, this.#retryAfter));
    }
    for (const entry of ran) this.#settle(entry, undefined, new Error('the worker thread stopped'));
  }

  onLaneClosed(lane: Lane): void {
    const index = this.#lanes.indexOf(lane);
    if (index !== -1) this.#lanes.splice(index, 1);
  }

  #settle(entry: Entry, result: TaskResult | undefined, err?: unknown): void {
    entry.settled = true;
    this.#pending--;
    this.#completed++;
    if (this.#pending === 0) this.#idle?.();
    // Last: the relay writes the response from here, and may run more middleware.
    entry.listener.onSettled(err, result);
  }

  stats(): PoolStats {
    let waiting = this.#queue.length;
    for (const lane of this.#lanes) for (const entry of lane.entries) if (Atomics.load(entry.slots, THREAD) < 0) waiting++;
    const elapsed = performance.now() - this.#startedAt;
    return {
      threads: this.#piscina.threads.length,
      maxThreads: this.maxThreads,
      pending: this.#pending,
      queueSize: waiting,
      maxQueue: this.maxQueue,
      utilization: elapsed > 0 ? Math.min(1, this.#busyTime / (elapsed * this.maxThreads)) : 0,
      completed: this.#completed,
      queueWait: summarize(this.#queueWait),
      runTime: summarize(this.#runTime),
    };
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      if (this.#pending > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      for (const lane of [...this.#lanes]) lane.close();
      // Each lane ends once its thread took the quit. piscina.close() may stop
      // a thread whose task still runs, which would end its lane with an error.
      await Promise.all([...this.#running].map((lane) => lane.ended));
      await this.#piscina.close();
    })();
    return this.#closing;
  }
}

function warnWorkerError(err: unknown): void {
  process.emitWarning(`a worker thread failed outside any request: ${err instanceof Error ? err.stack : String(err)}`, {
    code: WORKER_ERROR_WARNING_CODE,
  });
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
