// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`, so any error handler renders them. See README, Errors.
// A broken config is the operator's mistake, not a client's: status 500,
// never exposed.

/** One problem found in a config: where it is, and what is wrong there. */
export interface ConfigIssue {
  /** Where in the config, as `chain[2].offload.timeout` (`""` for the whole file). */
  path: string;
  /** What is wrong, in one line. */
  message: string;
  /** What the schema expects there, when known. */
  expected?: string;
  /** What the config has there, when there is something. */
  found?: string;
  /** The name the config probably meant (a typo). */
  suggestion?: string;
}

abstract class ConfigError extends Error {
  abstract readonly code: string;
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  /** The config file, when the config came from one. */
  file: string | undefined;
  constructor(message: string, file?: string, options?: ErrorOptions) {
    super(message, options);
    this.file = file;
  }
}

/** No config file at the given path, or none of the default names in the folder. */
export class ConfigNotFoundError extends ConfigError {
  readonly code = 'UNBLOCK_ERR_CONFIG_NOT_FOUND';
  constructor(message: string, file?: string) {
    super(message, file);
    this.name = 'ConfigNotFoundError';
  }
}

/** The file is not valid YAML or JSON, or a JS/TS config failed to load. */
export class ConfigParseError extends ConfigError {
  readonly code = 'UNBLOCK_ERR_CONFIG_PARSE';
  constructor(message: string, file?: string, options?: ErrorOptions) {
    super(message, file, options);
    this.name = 'ConfigParseError';
  }
}

/** The file's extension is not one unblock can load here (e.g. `.ts` on a Node without type stripping). */
export class ConfigUnsupportedError extends ConfigError {
  readonly code = 'UNBLOCK_ERR_CONFIG_UNSUPPORTED';
  constructor(message: string, file?: string, options?: ErrorOptions) {
    super(message, file, options);
    this.name = 'ConfigUnsupportedError';
  }
}

/** A `${VAR}` reference to an unset variable without a default, or `${VAR:?message}` on an unset one. */
export class ConfigEnvError extends ConfigError {
  readonly code = 'UNBLOCK_ERR_CONFIG_ENV';
  constructor(
    message: string,
    readonly path: string,
    readonly variable: string,
    file?: string,
  ) {
    super(message, file);
    this.name = 'ConfigEnvError';
  }
}

/** The config does not match the schema. `issues` lists every problem found, not just the first. */
export class ConfigValidationError extends ConfigError {
  readonly code = 'UNBLOCK_ERR_CONFIG_INVALID';
  constructor(
    readonly issues: readonly ConfigIssue[],
    file?: string,
  ) {
    super(`invalid config${file ? ` ${file}` : ''}:\n${issues.map((issue) => `  ${formatIssue(issue)}`).join('\n')}`, file);
    this.name = 'ConfigValidationError';
  }
}

/** An error about one place of the config: its message starts with that place's path. */
export abstract class ConfigPathError extends ConfigError {
  constructor(
    message: string,
    readonly path: string,
    file?: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${message}`, file, options);
    this.name = new.target.name;
  }
}

/** A module named by `app`, `use` or `offload.handler` cannot be found or imported, or does not export what the step needs. */
export class ConfigModuleError extends ConfigPathError {
  readonly code = 'UNBLOCK_ERR_CONFIG_MODULE';
}

/** A step's factory threw while the chain was being built (its options passed the schema but not the package's own checks). */
export class ConfigStepError extends ConfigPathError {
  readonly code = 'UNBLOCK_ERR_CONFIG_STEP';
}

/** `path: message` plus what was found and the suggestion, as one line. */
export function formatIssue(issue: ConfigIssue): string {
  let line = issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
  if (issue.suggestion !== undefined) line += ` — did you mean "${issue.suggestion}"?`;
  return line;
}

/** A bad argument to a function of this package: thrown at once, never later. */
export function invalidArgument(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'UNBLOCK_ERR_CONFIG_INVALID_ARGUMENT' });
}
