/**
 * The log of `azdb serve`: one JSON object a line (`time`, `level`, `event`, then the event's own
 * fields), for journald, `kubectl logs` and log shippers. Every string passes through
 * {@link redactSecrets}; callers never hand a token or a password to it in the first place.
 */
import { redactSecrets } from '../errors.js';

export type LogLevel = 'info' | 'warn' | 'error';

export type LogFields = Record<string, string | number | boolean | null | undefined | string[]>;

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/** `write` gets one complete line (with its newline), e.g. `(line) => process.stderr.write(line)`. */
export function createJsonLogger(write: (line: string) => void, now: () => Date = () => new Date()): Logger {
  const log = (level: LogLevel, event: string, fields: LogFields = {}): void => {
    const line: Record<string, unknown> = { time: now().toISOString(), level, event };
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      line[key] = typeof value === 'string' ? redactSecrets(value) : Array.isArray(value) ? value.map(redactSecrets) : value;
    }
    write(`${JSON.stringify(line)}\n`);
  };
  return {
    log,
    info: (event, fields) => log('info', event, fields),
    warn: (event, fields) => log('warn', event, fields),
    error: (event, fields) => log('error', event, fields),
  };
}
