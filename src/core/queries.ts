/**
 * The server's sessions through the broker (an in-process tunnel, as `azdb db connect` opens)
 * and the cancel / terminate helpers: `azdb queries` and the picker's queries screen.
 */
import { chooseLogin, type Login } from '../access/index.js';
import { resolveTarget } from '../broker/resolve-target.js';
import { openSession, serverError, type DbSession } from '../diagnostics/db-client.js';
import { ExternalError } from '../errors.js';
import type { Runtime } from './runtime.js';

/**
 * A session on database `name` through an in-process tunnel, as the login the roles allow
 * (`--db-user` / `--db-name` rules of {@link chooseLogin}). A failed login is an ExternalError
 * with the server's words and a hint.
 */
export async function loginSession(rt: Runtime, name: string, flags: { dbUser?: string; dbName?: string }, applicationName = 'azdb queries'): Promise<{ login: Login; session: DbSession }> {
  const db = rt.database(name);
  const login = chooseLogin(rt.allowed(db), flags, db.protocol);
  const target = await resolveTarget(db);
  await rt.tokens.getToken(rt.databaseScope);
  const session = await openSession({
    target,
    dbUser: login.dbUser,
    dbName: login.dbName,
    authorize: rt.authorize(db),
    getToken: () => rt.tokens.getToken(rt.databaseScope),
    audit: rt.audit,
    applicationName,
  }).catch((error: unknown) => {
    const e = serverError(error);
    throw new ExternalError(`could not log in to ${name} as ${login.dbUser}: ${e.message}`, { hint: e.hint ?? `Run \`azdb doctor ${name}\`.`, cause: error });
  });
  return { login, session };
}
