// The built-in steps: each config key maps to its package's factory and the
// `optionsSchema` that package exports, so the schema a config is checked
// against is the one the package itself documents.
import { errorHandler, optionsSchema as errorHandlerSchema } from '@unblock/error-handler';
import type { StepDefinition } from './types.js';

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
];

/** The shared worker-thread pools of the `pool:` and `pools:` sections: `undefined` until a pool package provides them. */
export const poolProvider: PoolProvider | undefined = undefined;

export interface PoolProvider {
  optionsSchema: Record<string, unknown>;
  create(options: Record<string, unknown>): unknown;
  close(pool: unknown): Promise<void>;
}
