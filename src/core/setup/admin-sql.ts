/**
 * Step 3's `x`: run the principal SQL on a server as its Microsoft Entra admin. The admin is
 * usually a person signed in with the Azure CLI, while DefaultAzureCredential on the broker's
 * host yields the broker's own identity (which may be the admin too), so the admin's token is
 * tried from each source in turn until the server takes one. I/O is injected: `open` logs in.
 */
import type { DbSession } from '../../diagnostics/db-client.js';
import { serverError } from '../../diagnostics/db-client.js';
import { ExternalError } from '../../errors.js';
import type { PrincipalSql } from './principal-grants.js';

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
 * Runs a principal plan on one server: `create` in its database, then each group of GRANTs in a
 * session on the group's database (PostgreSQL grants per database; MySQL's run anywhere, so in
 * the first session). `open(database)` logs in as the admin; every session it opens is closed.
 * A principal that exists already is not a failure (PostgreSQL's guarded create returns no row;
 * PostgreSQL 42710 and MySQL 1396 where it is not guarded): the GRANTs still run.
 */
export async function applyPrincipalSql(plan: PrincipalSql, open: (database: string) => Promise<DbSession>): Promise<{ existed: boolean; statements: number }> {
  let statements = 1;
  let existed: boolean;
  const first = await open(plan.createDatabase);
  try {
    existed = await createPrincipal(first, plan.create);
    for (const group of plan.grants) {
      const session = group.database === plan.createDatabase || group.database === '' ? first : await open(group.database);
      try {
        for (const statement of group.statements) {
          await session.query(statement);
          statements += 1;
        }
      } finally {
        if (session !== first) await session.close();
      }
    }
  } finally {
    await first.close();
  }
  return { existed, statements };
}

async function createPrincipal(session: DbSession, create: string): Promise<boolean> {
  try {
    const { rows } = await session.query(create);
    return session.protocol === 'postgres' && Array.isArray(rows) && rows.length === 0;
  } catch (error) {
    const e = serverError(error);
    if (e.code === '42710' || e.errno === 1396) return true;
    throw error;
  }
}
