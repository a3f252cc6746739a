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

/** Wraps anything thrown into the hierarchy; unknown errors are bugs. */
export function toAzdbError(error: unknown): AzdbError {
  if (error instanceof AzdbError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BugError(message, { cause: error });
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
