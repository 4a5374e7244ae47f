// Errors follow the http-errors convention (status, statusCode, expose) with
// a stable `code`. The command's own failures are the operator's business:
// status 500, never exposed. Errors of the config keep the codes of @unblock/config.

/** A wrong command line: unknown command or flag, a bad flag value. Exit code 2. */
export class UsageError extends TypeError {
  readonly code = 'UNBLOCK_ERR_CLI_USAGE';
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command's own failures at run time: the operator's business, never exposed. */
abstract class CommandError extends Error {
  abstract readonly code: string;
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
}

/** A worker process failed before all its servers listened (a module that throws on import, a port in use). Exit code 1. */
export class StartError extends CommandError {
  readonly code = 'UNBLOCK_ERR_CLI_START';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StartError';
  }
}

/** A server's TLS files cannot be read or do not fit together (a key that is not the certificate's, a wrong passphrase). Exit code 1. */
export class TlsError extends CommandError {
  readonly code = 'UNBLOCK_ERR_CLI_TLS';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TlsError';
  }
}

/**
 * A worker failed to start with an error that has a code of its own (a TLS
 * file, a config module that throws on import), rebuilt in the primary:
 * error classes do not cross processes, their message and code do.
 */
export class WorkerStartError extends CommandError {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
    this.name = 'WorkerStartError';
  }
}
