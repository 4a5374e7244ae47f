// The built-in steps: each config key maps to its package's factory and the
// `optionsSchema` that package exports, so the schema a config is checked
// against is the one the package itself documents.
import { resolve } from 'node:path';
import { errorHandler, optionsSchema as errorHandlerSchema } from '@unblock/error-handler';
import { waitForBody, optionsSchema as waitForBodySchema } from '@unblock/wait-for-body';
import { createPool, offload, optionsSchema as offloadSchema, poolOptionsSchema, type Pool } from '@unblock/worker-pool';
import type { PoolStats } from './build.js';
import type { JsonSchema, StepDefinition } from './types.js';

/**
 * offload's options in a config: its package's options, plus the handler
 * module (a path, relative to the config file) and the pool by name
 * (a pool object cannot be written in YAML).
 */
const offloadStepSchema: JsonSchema = {
  ...offloadSchema,
  required: ['handler'],
  properties: {
    handler: { description: 'The module whose default export handles the request on a worker thread: a path relative to the config file.', type: 'string', minLength: 1 },
    pool: { description: 'The pool to run on: "default" (the `pool` section) or a name from `pools`. Default "default".', type: 'string', minLength: 1, default: 'default' },
    ...offloadSchema.properties,
  },
};

/** The built-in middleware steps, in the order the docs list them. */
export const builtinSteps: readonly StepDefinition[] = [
  {
    name: 'error-handler',
    description: '@unblock/error-handler: turns errors of the steps after it into responses, never buffering a streaming body. Put it first.',
    optionsSchema: errorHandlerSchema,
    create(options) {
      const handler = errorHandler(options);
      return { middleware: handler, terminal: handler.terminal };
    },
  },
  {
    name: 'wait-for-body',
    description: '@unblock/wait-for-body: reads the whole request body (with a limit and a timeout) before the steps after it run.',
    optionsSchema: waitForBodySchema,
    create(options) {
      return { middleware: waitForBody(options) };
    },
  },
  {
    name: 'offload',
    description: '@unblock/worker-pool: runs a blocking handler module on a worker-thread pool and streams its response back.',
    optionsSchema: offloadStepSchema,
    async create(options, context) {
      const { handler, pool = 'default', ...rest } = options;
      const module = resolve(context.dir, handler as string);
      // inline runs on this thread: no pool to create.
      return { middleware: offload(module, rest.inline === true ? rest : { ...rest, pool: (await context.pool(pool as string)) as Pool }) };
    },
  },
];

/** The shared worker-thread pools of the `pool:` and `pools:` sections. */
export const poolProvider: PoolProvider = {
  optionsSchema: poolOptionsSchema,
  create: (options) => createPool(options),
  close: (pool) => (pool as Pool).close(),
  stats(pool) {
    const stats = (pool as Pool).stats();
    // Every thread busy and the queue full: the next offloaded request gets 503.
    return { ...stats, shedding: stats.pending >= stats.maxThreads + stats.maxQueue };
  },
};

export interface PoolProvider {
  optionsSchema: Record<string, unknown>;
  create(options: Record<string, unknown>): unknown;
  close(pool: unknown): Promise<void>;
  stats(pool: unknown): PoolStats;
}
