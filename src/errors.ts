/**
 * The one error hierarchy of azdb.
 *
 * - {@link UserError}: the user can fix it (bad flag, bad config, missing login); carries a hint.
 * - {@link ExternalError}: something outside azdb failed (Azure, a server, a subprocess).
 * - {@link BugError}: azdb itself is wrong; the CLI prints a short message and where to report it.
 *
 * Messages pass through {@link redactSecrets} so a token can never reach a terminal or a log
 * through an error, even when a library echoes a response body.
 */

export const REPORT_URL = 'https://github.com/azdb/azdb/issues';

export type ErrorKind = 'user' | 'external' | 'bug';

export interface AzdbErrorOptions {
  /** What the user can do next; shown under the message. */
  hint?: string;
  cause?: unknown;
}

export abstract class AzdbError extends Error {
  abstract readonly kind: ErrorKind;
  readonly hint: string | undefined;

  constructor(message: string, options: AzdbErrorOptions = {}) {
    super(redactSecrets(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint === undefined ? undefined : redactSecrets(options.hint);
    this.name = new.target.name;
  }
}

/** Bad input the user can fix: exit code 2 for usage, 1 otherwise. */
export class UserError extends AzdbError {
  readonly kind = 'user' as const;
  readonly exitCode: 1 | 2;

  constructor(message: string, options: AzdbErrorOptions & { usage?: boolean } = {}) {
    super(message, options);
    this.exitCode = options.usage ? 2 : 1;
  }
}

/** A failure outside azdb: Azure, the network, a database server, a subprocess. */
export class ExternalError extends AzdbError {
  readonly kind = 'external' as const;
}

/** Something that should not happen: a defect in azdb. */
export class BugError extends AzdbError {
  readonly kind = 'bug' as const;
}

/**
 * Wraps anything thrown into the hierarchy. An operating-system error (a port in use, a file not
 * there, a refused connection) is the user's or the outside world's, with a hint; anything else
 * unknown is a bug.
 */
export function toAzdbError(error: unknown): AzdbError {
  if (error instanceof AzdbError) return error;
  const system = fromSystemError(error);
  if (system) return system;
  const message = error instanceof Error ? error.message : String(error);
  return new BugError(message, { cause: error });
}

/** What Node's errors from the operating system carry (net, fs, dns). */
interface SystemErrorFields {
  code?: unknown;
  syscall?: unknown;
  address?: unknown;
  port?: unknown;
  path?: unknown;
  hostname?: unknown;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

function fromSystemError(error: unknown): AzdbError | undefined {
  if (!(error instanceof Error)) return undefined;
  const fields = error as Error & SystemErrorFields;
  const code = typeof fields.code === 'string' && /^E[A-Z_]+$/.test(fields.code) ? fields.code : undefined;
  if (!code) return undefined;
  const listening = fields.syscall === 'listen' || fields.syscall === 'bind';
  const where = typeof fields.address === 'string' ? `${fields.address.includes(':') ? `[${fields.address}]` : fields.address}${typeof fields.port === 'number' ? `:${fields.port}` : ''}` : undefined;
  const path = typeof fields.path === 'string' ? fields.path : undefined;
  const options = { cause: error };
  switch (code) {
    case 'EADDRINUSE':
      return new UserError(`cannot listen on ${where ?? 'that address'}: it is already in use`, {
        ...options,
        hint: 'Pick another port (--port, or the port in azdb.yaml), or stop the process that holds it (`ss -ltnp` shows which).',
      });
    case 'EADDRNOTAVAIL':
      return new UserError(`cannot listen on ${where ?? 'that address'}: no interface of this machine has that address`, { ...options, hint: 'Listen on 127.0.0.1, or on an address `ip addr` lists.' });
    case 'EACCES':
    case 'EPERM':
      if (listening) return new UserError(`not allowed to listen on ${where ?? 'that port'}`, { ...options, hint: 'Ports below 1024 need root or CAP_NET_BIND_SERVICE: pick a port above 1024.' });
      return new UserError(`permission denied${path ? `: ${path}` : ''}`, { ...options, hint: 'Check the owner and mode of the file or folder (ls -l), or run as the user who owns it.' });
    case 'ENOENT':
      return new UserError(`no such file or folder${path ? `: ${path}` : ''}`, { ...options, hint: 'Check the path (in azdb.yaml or the flag you gave).' });
    case 'EMFILE':
    case 'ENFILE':
      return new ExternalError('too many open files', { ...options, hint: 'Raise the limit (`ulimit -n`, or LimitNOFILE= in the service unit), or lower --max-connections.' });
    case 'ENOSPC':
      return new ExternalError(`no space left on the device${path ? ` of ${path}` : ''}`, { ...options, hint: 'Free some space (df -h shows where).' });
  }
  if (NETWORK_CODES.has(code)) {
    const host = typeof fields.hostname === 'string' ? fields.hostname : where;
    return new ExternalError(`network: ${code}${host ? ` (${host})` : ''}: ${error.message}`, { ...options, hint: 'Check the address and that the server is up; `azdb doctor NAME` tests DNS, TCP, TLS and the login step by step.' });
  }
  return undefined;
}

// A JWT is three base64url segments, the first starting with `eyJ` ('{"' encoded).
const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
// Not MySQL's "(using password: YES)": that says whether a password was sent, not which.
const SECRET_FIELD_PATTERN =
  /("?(?:access_token|refresh_token|client_secret|password|secret|token)"?\s*[:=]\s*"?)(?!(?:YES|NO)\))([^"\s,&}]+)/gi;

/** Removes anything that looks like a token or a secret field's value. */
export function redactSecrets(text: string): string {
  return text.replace(JWT_PATTERN, '[redacted token]').replace(SECRET_FIELD_PATTERN, '$1[redacted]');
}

/** The message of anything thrown, redacted. */
export function errorMessage(error: unknown): string {
  return redactSecrets(error instanceof Error ? error.message : String(error));
}
