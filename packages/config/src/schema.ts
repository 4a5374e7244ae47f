// The JSON Schema of a whole config file, composed from the packages'
// `optionsSchema`s. The same object validates configs at load time and is
// shipped as schema.json for editors (`$schema`).
import { builtinSteps, poolProvider } from './steps.js';
import type { JsonSchema, StepDefinition } from './types.js';
import { durationSchema } from './units.js';

/** Keys of `server` and of each `servers[]` entry. */
const listenerProperties: Record<string, JsonSchema> = {
  port: { description: 'TCP port to listen on (0: any free port). Default 3000.', type: 'integer', minimum: 0, maximum: 65535, default: 3000 },
  host: { description: 'Address to listen on. Default 127.0.0.1 (this machine only); 0.0.0.0 or :: for every interface.', type: 'string', minLength: 1, default: '127.0.0.1' },
  headersTimeout: durationSchema('Time to receive the complete request headers; slow clients are cut off (408). Default "10s".', '10s'),
  requestTimeout: durationSchema('Time to receive the complete request, body included (408). 0 turns it off. Default "60s".', '60s'),
  keepAliveTimeout: durationSchema('How long an idle keep-alive connection stays open. Default "5s".', '5s'),
  health: {
    description: 'Path of the health endpoint (e.g. /healthz): 200 with pool utilization, queue length and event-loop delay as JSON, 503 while the server sheds load or shuts down. Default: none.',
    anyOf: [{ type: 'string', pattern: '^/' }, { const: false }],
  },
  accessLog: {
    description: 'One line per request: true (human on a terminal, JSON otherwise), "human", "json" or false. Default false.',
    anyOf: [{ type: 'boolean' }, { enum: ['human', 'json'] }],
    default: false,
  },
  blockingThreshold: durationSchema('Log every middleware that holds the event loop at least this long (e.g. "20ms"). Default: off.'),
  tls: {
    description: 'Serve HTTPS with these PEM files (paths relative to the config file), read by every worker as it starts, so that a reload picks up renewed certificates. In "server" with several servers: the default of each. Default: plain HTTP.',
    type: 'object',
    additionalProperties: false,
    required: ['key', 'cert'],
    properties: {
      key: { description: 'The private key (PEM).', type: 'string', minLength: 1 },
      cert: { description: 'The certificate chain (PEM): the server certificate first, then its intermediates.', type: 'string', minLength: 1 },
      passphrase: { description: 'The passphrase of an encrypted key: better ${VARIABLE} than written in the file.', type: 'string' },
    },
  },
};

const serverOnlyProperties: Record<string, JsonSchema> = {
  workers: {
    description: 'Processes to run (node:cluster): a number, or "auto" for one per CPU. Default 1.',
    anyOf: [{ type: 'integer', minimum: 1, maximum: 1024 }, { const: 'auto' }],
    default: 1,
  },
  shutdownTimeout: durationSchema('On SIGTERM/SIGINT/SIGHUP, how long in-flight requests get to finish before their connections are closed. Default "10s".', '10s'),
};

/** The step keys that are not middleware packages. */
export const STRUCTURAL_STEPS = ['mount', 'app', 'use'] as const;

/** Every step key a chain accepts. */
export function stepNames(): string[] {
  return [...builtinSteps.map((step) => step.name), ...STRUCTURAL_STEPS];
}

/**
 * The JSON Schema of a config file. With `validateSteps: false` chain items
 * are left unchecked: the validator walks them itself, to report a wrong step
 * by its name rather than as "matches none of 6 alternatives".
 */
export function composeSchema({ validateSteps = true }: { validateSteps?: boolean } = {}): JsonSchema {
  const definitions: Record<string, JsonSchema> = {
    server: {
      description: 'The server: its address and settings; with `servers`, the defaults of every server. `workers` and `shutdownTimeout` are for the whole process.',
      type: 'object',
      additionalProperties: false,
      properties: { ...listenerProperties, ...serverOnlyProperties },
    },
    listener: {
      description: 'One of several servers, each with its own address and chain.',
      type: 'object',
      additionalProperties: false,
      required: ['chain'],
      properties: {
        name: { description: 'A name for logs.', type: 'string', minLength: 1 },
        ...listenerProperties,
        chain: { $ref: '#/definitions/chain' },
      },
    },
    chain: {
      description: 'The steps a request goes through, in order.',
      type: 'array',
      items: { $ref: '#/definitions/step' },
    },
    step: validateSteps ? { anyOf: stepNames().map((name) => ({ $ref: `#/definitions/step:${name}` })) } : {},
    'step:mount': {
      description: 'A nested chain for the requests under a path; the path is taken off req.url inside it.',
      type: 'object',
      additionalProperties: false,
      required: ['mount', 'chain'],
      properties: {
        mount: { description: 'The path, e.g. /reports.', type: 'string', pattern: '^/' },
        chain: { $ref: '#/definitions/chain' },
      },
    },
    'step:app': {
      description: 'An app module (path relative to the config file, or a package): its default export is an Express/Connect app, a Koa app, an http.Server or a (req, res[, next]) function.',
      type: 'object',
      additionalProperties: false,
      required: ['app'],
      properties: { app: { type: 'string', minLength: 1 } },
    },
    'step:use': {
      description: 'Any middleware factory: a package name (resolved from the config file\'s folder) or a path; it is called with `options`.',
      type: 'object',
      additionalProperties: false,
      required: ['use'],
      properties: {
        use: { description: 'Package name or path, e.g. compression or ./middleware/auth.js.', type: 'string', minLength: 1 },
        export: { description: 'The named export to call instead of the default export, e.g. json for body-parser.', type: 'string', minLength: 1 },
        options: { description: 'The factory\'s argument. Omitted: the factory is called with no argument.' },
      },
    },
  };
  for (const step of builtinSteps) {
    definitions[`options:${step.name}`] = { description: step.description, ...embeddable(step.optionsSchema) };
    definitions[`step:${step.name}`] = builtinStepSchema(step);
  }
  const properties: Record<string, JsonSchema> = {
    $schema: { description: 'The JSON Schema of this file, for editors.', type: 'string' },
    server: { $ref: '#/definitions/server' },
    servers: { description: 'Several servers, each with its own address and chain (instead of `chain`).', type: 'array', minItems: 1, items: { $ref: '#/definitions/listener' } },
    chain: { $ref: '#/definitions/chain' },
  };
  definitions.pool = { description: 'A worker-thread pool.', ...embeddable(poolProvider.optionsSchema) };
  properties.pool = { description: 'The default worker-thread pool, shared by every offload step that names no other.', $ref: '#/definitions/pool' };
  properties.pools = {
    description: 'More pools by name, for offload steps that say `pool: <name>`.',
    type: 'object',
    propertyNames: { pattern: '^[A-Za-z][\\w-]*$' },
    additionalProperties: { $ref: '#/definitions/pool' },
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'unblock config',
    description: 'A config file for @unblock/config and the unblock command (unblock serve, unblock check).',
    type: 'object',
    additionalProperties: false,
    properties,
    definitions,
  };
}

function builtinStepSchema(step: StepDefinition): JsonSchema {
  return {
    description: step.description,
    type: 'object',
    additionalProperties: false,
    required: [step.name],
    properties: {
      // `- error-handler:` with nothing after it means the defaults.
      [step.name]: { anyOf: [{ type: 'null' }, { $ref: `#/definitions/options:${step.name}` }] },
    },
  };
}

/** A package's schema as a definition of ours: `$schema`/`$id` belong only at a document's root. */
function embeddable(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}
