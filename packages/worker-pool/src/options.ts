// Option validation (a TypeError with a code when the pool or middleware is
// built, never at request time) and the JSON Schemas of the options a config
// file can carry.
import { availableParallelism } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import bytes from 'bytes';
import ms from 'ms';
import { invalidOption } from './errors.js';
import { MAX_NICE, type HandlerKind } from './protocol.js';

/** Milliseconds, or a string such as `"5s"` or `"250ms"`. */
export type Duration = number | string;
/** Bytes, or a string such as `"1mb"` or `"64kb"`. */
export type Size = number | string;

export function checkKnownKeys(what: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw invalidOption(`${what}: unknown option "${key}" (known: ${known.join(', ')})`);
  }
}

export function checkObject(what: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidOption(`${what}: options must be an object`);
  return value as Record<string, unknown>;
}

export function toDuration(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = typeof value === 'string' ? ms(value.trim() as ms.StringValue) : value;
  // Node's timers take at most 2^31 - 1 ms: a longer one fires at once.
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed < 0 || parsed > MAX_TIMER_MS) {
    throw invalidOption(`${name} must be a duration: milliseconds from 0 to ${MAX_TIMER_MS} (24.8 days) or a string such as "5s" (got ${JSON.stringify(value)})`);
  }
  return parsed;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export function toSize(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  // Trimmed: bytes.parse("2mb ") falls back to parseInt (2).
  const parsed = typeof value === 'string' ? bytes.parse(value.trim()) : value;
  if (typeof parsed !== 'number' || !Number.isSafeInteger(parsed) || parsed < 1) {
    throw invalidOption(`${name} must be a size: bytes >= 1 or a string such as "1mb" (got ${JSON.stringify(value)})`);
  }
  return parsed;
}

export function toInteger(name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw invalidOption(`${name} must be an integer ${range} (got ${JSON.stringify(value)})`);
  }
  return value;
}

export function toBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(`${name} must be a boolean (got ${JSON.stringify(value)})`);
  return value;
}

const RESOURCE_LIMITS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb'] as const;

export function toResourceLimits(value: unknown): ResourceLimits | undefined {
  if (value === undefined) return undefined;
  const limits = checkObject('createPool() resourceLimits', value);
  checkKnownKeys('createPool() resourceLimits', limits, RESOURCE_LIMITS);
  for (const key of RESOURCE_LIMITS) {
    const limit = limits[key];
    if (limit !== undefined && (typeof limit !== 'number' || !(limit > 0))) {
      throw invalidOption(`resourceLimits.${key} must be a number > 0 (megabytes; got ${JSON.stringify(limit)})`);
    }
  }
  return { ...limits } as ResourceLimits;
}

export const KINDS: readonly HandlerKind[] = ['auto', 'node', 'koa', 'fetch'];

export const DEFAULT_MAX_QUEUE = 256;
/**
 * How much lower than the main thread the worker threads are scheduled, in
 * nice levels. Measured on 2 cores with the pool saturated: 6 kept the event
 * loop's p99 under 1 ms where 0 and 3 let it reach 2–4 ms, and the blocking
 * route's throughput stayed level with bare piscina's (10 cost it 10 %). On a
 * busier day 6 left 3–4 ms and 13 took it to 1–2 ms for up to 14 % of the
 * blocking throughput (README, Performance): a choice left to the user.
 */
export const DEFAULT_NICE = 6;
export const DEFAULT_IDLE_TIMEOUT = 30_000;
export const DEFAULT_RETRY_AFTER = 1_000;
export const DEFAULT_TIMEOUT = 30_000;
export const DEFAULT_ABORT_GRACE = 1_000;
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

export function defaultMaxThreads(): number {
  return Math.max(1, availableParallelism());
}

const duration = {
  anyOf: [
    { type: 'number', minimum: 0, description: 'milliseconds' },
    { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|msecs?|secs?|mins?|hours?|days?)?\\s*$', description: 'e.g. "5s"' },
  ],
} as const;
const size = {
  anyOf: [
    { type: 'integer', minimum: 1, description: 'bytes' },
    { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*(b|kb|mb|gb|tb|pb)?\\s*$', description: 'e.g. "1mb"' },
  ],
} as const;

/**
 * JSON Schema (draft-07) of the JSON-representable options of `offload()`.
 * `pool` and `forward` are functions/objects: JS configuration only.
 */
export const optionsSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: '@unblock/worker-pool offload() options',
  type: 'object',
  properties: {
    timeout: { ...duration, description: 'Deadline for the whole request, queue wait included; 0 disables. Default 30s.' },
    kind: { type: 'string', enum: [...KINDS], description: 'How the default export is called. Default "auto".' },
    inline: { type: 'boolean', description: 'Run the handler on the main thread through the same bridge. Default false.' },
    abortGrace: { ...duration, description: 'After a client disconnect, how long the handler may run on before its thread is replaced. Default 1s.' },
    highWaterMark: { ...size, description: 'Bytes in flight between threads, each way, before the writer waits. Default 1mb.' },
    serverTiming: { type: 'boolean', description: 'Add a Server-Timing header with the queue wait. Default false.' },
  },
  additionalProperties: false,
} as const;

/** JSON Schema (draft-07) of the options of `createPool()`. */
export const poolOptionsSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: '@unblock/worker-pool createPool() options',
  type: 'object',
  properties: {
    maxThreads: { type: 'integer', minimum: 1, description: 'Default: os.availableParallelism().' },
    minThreads: { type: 'integer', minimum: 0, description: 'Threads kept alive when idle. Default 1 (at most maxThreads).' },
    maxQueue: { type: 'integer', minimum: 0, description: 'Requests that may wait for a thread; more get 503. Default 256.' },
    idleTimeout: { ...duration, description: 'How long a thread above minThreads may stay idle. Default 30s.' },
    retryAfter: { ...duration, description: 'Retry-After of the 503 responses, rounded up to seconds. Default 1s.' },
    nice: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_NICE,
      description: 'How many nice levels below the main thread the worker threads run (Linux), so the event loop gets a core first. Default 6; 0 keeps them level.',
    },
    resourceLimits: {
      type: 'object',
      properties: Object.fromEntries(RESOURCE_LIMITS.map((key) => [key, { type: 'number', exclusiveMinimum: 0 }])),
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;
