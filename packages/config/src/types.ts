import type { IncomingMessage, ServerResponse } from 'node:http';

/** A JSON Schema (draft-07) as a plain object. */
export type JsonSchema = Record<string, unknown>;

/** What `loadConfig` and `validateConfig` take besides the config itself. */
export interface LoadOptions {
  /** Where relative config paths and the default config names are looked up. Default `process.cwd()`. */
  cwd?: string;
  /** The variables `${VAR}` reads. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface ValidateOptions {
  /** The config file, for messages. */
  file?: string;
  /** The folder relative paths in the config are resolved against. Default: the file's folder, else `process.cwd()`. */
  dir?: string;
}

/** How a server writes one line per request. */
export type AccessLog = false | 'human' | 'json' | 'auto';

/** A server's TLS files (absolute paths) and the key's passphrase. */
export interface TlsConfig {
  key: string;
  cert: string;
  passphrase: string | undefined;
  /** Where these settings are in the config, for messages: `server.tls` when a server inherits them, else `servers[1].tls`. */
  path: string;
}

/** One server of a config, with its settings resolved to numbers and defaults filled in. */
export interface ServerConfig {
  /** `servers[].name`, else `"server"`, `"server-2"` … */
  name: string;
  port: number;
  host: string;
  /** ms to receive the complete request headers (slowloris guard). */
  headersTimeout: number;
  /** ms to receive the complete request. */
  requestTimeout: number;
  /** ms an idle keep-alive connection is kept. */
  keepAliveTimeout: number;
  /** Path of the health endpoint, or `undefined` for none. */
  health: string | undefined;
  accessLog: AccessLog;
  /** Report middleware that hold the event loop at least this many ms; `undefined`: off. */
  blockingThreshold: number | undefined;
  /** HTTPS: the PEM files, as absolute paths; `undefined`: plain HTTP. */
  tls: TlsConfig | undefined;
  /** Where this server is in the config, for messages (`server`, `servers[1]`). */
  path: string;
  chain: Step[];
}

/** A step of a chain, validated. `path` says where it is in the config (`chain[2]`). */
export type Step =
  | { kind: 'builtin'; name: string; options: Record<string, unknown>; path: string }
  | { kind: 'mount'; route: string; chain: Step[]; path: string }
  | { kind: 'app'; module: unknown; path: string }
  | { kind: 'use'; module: unknown; export: string | undefined; options: unknown; hasOptions: boolean; path: string }
  /** A function or app placed directly in the chain of a JS config. */
  | { kind: 'item'; value: unknown; path: string };

/** A validated config: what `buildChain` and the CLI run. */
export interface LoadedConfig {
  /** The config file, when it came from one. */
  file: string | undefined;
  /** The folder that relative paths are resolved against. */
  dir: string;
  /** Processes to run (`serve` only): a number, or `"auto"` for one per CPU. Default 1. */
  workers: number | 'auto';
  /** ms that in-flight requests get to finish on shutdown. */
  shutdownTimeout: number;
  /** Pool options by pool name; `default` is the `pool:` section. */
  pools: Record<string, Record<string, unknown>>;
  servers: ServerConfig[];
}

/** What a built-in step can use while it builds its middleware. */
export interface StepContext {
  /** The folder of the config file. */
  dir: string;
  /** Where the step is in the config, for messages. */
  path: string;
  /** The shared pool of that name, created on first use. */
  pool(name: string): Promise<unknown>;
}

/**
 * A built-in step: a config key (`wait-for-body`) that maps to a package's
 * factory and its `optionsSchema`.
 */
export interface StepDefinition {
  name: string;
  /** One line for the shipped JSON Schema and `unblock check`. */
  description: string;
  /** JSON Schema of the step's options (the value under its key). */
  optionsSchema: JsonSchema;
  /** Builds the middleware from validated options. */
  create(options: Record<string, unknown>, context: StepContext): StepResult | Promise<StepResult>;
}

/** What a built-in step adds to the chain it is in. */
export interface StepResult {
  /** Goes where the step is. */
  middleware: unknown;
  /** Error middleware that goes at the end of the same chain (the error handler renders what the steps after it fail with). */
  terminal?: unknown;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;
