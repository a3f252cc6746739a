/**
 * Step 3's `x`: run the principal SQL on a server as its Microsoft Entra admin. The admin is
 * usually a person signed in with the Azure CLI, while DefaultAzureCredential on the broker's
 * host yields the broker's own identity (which may be the admin too), so the admin's token is
 * tried from each source in turn until the server takes one. I/O is injected: `open` logs in.
 */
import type { DbSession } from '../../diagnostics/db-client.js';
import { serverError } from '../../diagnostics/db-client.js';
import { ExternalError } from '../../errors.js';

export interface AdminTokenSource {
  /** How the person knows it: "Azure CLI", "DefaultAzureCredential". */
  name: string;
  getToken(): Promise<string>;
}

export class AdminLoginFailed extends ExternalError {
  constructor(readonly attempts: ReadonlyArray<{ source: string; message: string }>) {
    super(attempts.map((a) => `the ${a.source} token was refused: ${a.message}`).join('; '));
  }
}

/** The first session a source's token opens; AdminLoginFailed lists every source's failure. */
export async function openAdminSession(
  sources: readonly AdminTokenSource[],
  open: (getToken: () => Promise<string>) => Promise<DbSession>,
): Promise<{ session: DbSession; source: string }> {
  const attempts: Array<{ source: string; message: string }> = [];
  for (const source of sources) {
    try {
      return { session: await open(() => source.getToken()), source: source.name };
    } catch (error) {
      attempts.push({ source: source.name, message: serverError(error).message });
    }
  }
  throw new AdminLoginFailed(attempts);
}

/**
 * Runs the statements in order. A create statement (the first) refused because the principal
 * exists (PostgreSQL 42710, MySQL 1396: servers that share an engine, or a second run) is not a
 * failure: the GRANT after it still runs. Resolves with whether it existed.
 */
export async function runPrincipalStatements(session: DbSession, statements: readonly string[]): Promise<{ existed: boolean }> {
  let existed = false;
  for (const [i, statement] of statements.entries()) {
    try {
      await session.query(statement);
    } catch (error) {
      if (i !== 0 || !alreadyExists(error)) throw error;
      existed = true;
    }
  }
  return { existed };
}

function alreadyExists(error: unknown): boolean {
  const e = serverError(error);
  return e.code === '42710' || e.errno === 1396;
}
