// One logger for lifecycle events and request lines: human-readable on a
// terminal, one JSON object per line otherwise (what log collectors read).
import type { AccessLog } from '@unblock/config';

export type LogFormat = 'human' | 'json';

export interface Logger {
  readonly format: LogFormat;
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** Prints text as it is in human format; in JSON, as one event carrying `fields` and the text. */
  block(message: string, text: string, fields?: Record<string, unknown>): void;
}

/** `human` on a terminal, `json` otherwise, unless UNBLOCK_LOG_FORMAT says. */
export function defaultFormat(stream: NodeJS.WriteStream = process.stdout): LogFormat {
  const forced = process.env.UNBLOCK_LOG_FORMAT;
  if (forced === 'human' || forced === 'json') return forced;
  return stream.isTTY ? 'human' : 'json';
}

/** The format of request lines for a server's `accessLog` setting; `undefined`: none. */
export function accessLogFormat(setting: AccessLog): LogFormat | undefined {
  if (setting === false) return undefined;
  return setting === 'auto' ? defaultFormat() : setting;
}

export function createLogger(format: LogFormat = defaultFormat(), base: Record<string, unknown> = {}): Logger {
  const write = (stream: NodeJS.WriteStream, level: string, message: string, fields: Record<string, unknown> = {}) => {
    if (format === 'json') {
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...base, ...fields })}\n`);
      return;
    }
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
    stream.write(`${[message, ...extra].join(' ')}\n`);
  };
  return {
    format,
    info: (message, fields) => write(process.stdout, 'info', message, fields),
    error: (message, fields) => write(process.stderr, 'error', message, fields),
    block(message, text, fields) {
      if (format === 'json') write(process.stdout, 'info', message, { ...fields, text });
      else process.stdout.write(`${message}\n${text}\n`);
    },
  };
}
