/**
 * Step 3: a database user for the identity on each chosen server. The check logs in through the
 * broker as that user; `runPrincipalSql` runs the guide's SQL as the server's Entra admin first.
 */
import { join } from 'node:path';
import { DEFAULT_MYSQL_DB_NAME, DEFAULT_POSTGRES_DB_NAME } from '../../../access/index.js';
import { NO_AUDIT } from '../../../broker/audit.js';
import { resolveTarget } from '../../../broker/resolve-target.js';
import { buildConfig } from '../../../config/generate.js';
import type { DatabaseConfig } from '../../../config/schema.js';
import { runCheck, type CheckResult } from '../../../diagnostics/check.js';
import { checkLogin } from '../../../diagnostics/checks/login.js';
import { openSession, serverError } from '../../../diagnostics/db-client.js';
import type { DoctorSetup, DoctorState } from '../../../diagnostics/doctor-types.js';
import { realDoctorDeps } from '../../../diagnostics/real-deps.js';
import { AzdbError, errorMessage } from '../../../errors.js';
import type { SetupAnswers, StepReport } from '../../api/setup.js';
import { AdminLoginFailed, openAdminSession, runPrincipalStatements } from '../admin-sql.js';
import { adminCommand, principalSql } from '../artifacts.js';
import { stepReport, writeArtifact, type SetupContext } from '../context.js';
import { ensureIdentity } from '../identity.js';
import { chosenServers } from '../servers.js';

const defaultDbName = (db: Pick<DatabaseConfig, 'protocol'>) => (db.protocol === 'postgres' ? DEFAULT_POSTGRES_DB_NAME : DEFAULT_MYSQL_DB_NAME);

/** The doctor's login check for `dbUser` on one server, with setup's own token cache. */
async function loginCheck(sc: SetupContext, db: DatabaseConfig, dbUser: string, signal: AbortSignal): Promise<CheckResult> {
  const setup: DoctorSetup = {
    configFile: sc.configFile,
    config: buildConfig({ version: 'v1', azure: { cloud: sc.basis.cloud } }, sc.configFile),
    databases: [db],
    allowed: () => ({ dbUsers: [dbUser], dbNames: [defaultDbName(db)], deniedUsers: [], deniedNames: [] }),
    authorize: () => () => ({ allowed: true }),
    getToken: () => sc.tokens.getToken(sc.scope),
    audit: NO_AUDIT,
  };
  const deps = realDoctorDeps({ load: async () => setup, probeCredentials: async () => { throw new Error('not used'); } }, sc.env);
  const claims = sc.found.identity?.claims;
  try {
    const target = await resolveTarget(db);
    const state: DoctorState = { name: db.name, setup, db, target, ...(claims ? { claims } : {}) };
    return await runCheck({ id: 'login', title: 'Login through the broker', limitMs: 10_000 }, checkLogin, state, deps, signal);
  } catch (error) {
    return { id: 'login', title: 'Login through the broker', status: 'fail', detail: errorMessage(error), hint: error instanceof AzdbError && error.hint ? error.hint : '' };
  }
}

/** The SQL and commands for each chosen server, and whether the database user logs in; `before` leads the lines. */
export async function checkUsers(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal, before: string[] = []): Promise<StepReport> {
  const who = await ensureIdentity(sc, signal);
  const dbUser = answers.dbUser || 'teleport';
  const dbs = await chosenServers(sc, answers, signal);
  if (dbs.length === 0) {
    return stepReport('users', 'fail', 'no servers to set up: discovery found none for the types, regions and subscriptions of step 2', 'Go back to step 2 (b) and check its listing, or clear the servers field.');
  }
  const sql: string[] = [];
  const commands: string[] = [];
  const sqlFile = join(sc.artifactDir, 'principals.sql');
  for (const db of dbs) {
    sql.push(`-- ${db.name} (${db.protocol}, ${db.labels['engine'] ?? db.uri})`, ...principalSql(db.protocol, dbUser, who?.claims), '');
    commands.push(`# ${db.name}: ${adminCommand(db, answers.adminUser || '<entra-admin>', sqlFile)}`);
  }
  const sqlPath = await writeArtifact(sc, 'principals.sql', `${sql.join('\n')}\n`);
  const commandsPath = await writeArtifact(sc, 'principals-commands.sh', `# Run the SQL as each server's Entra admin (the token is the password; never stored)\n${commands.join('\n')}\n`);
  const results = await Promise.all(dbs.map((db) => loginCheck(sc, db, dbUser, signal)));
  const failed = results.filter((r) => r.status === 'fail');
  const lines = [
    ...before,
    `identity: ${who ? `${who.source}, object id ${who.claims?.objectId ?? '?'}, client id ${who.claims?.appId ?? '?'}` : 'none (step 1 failed): the SQL has placeholders'}`,
    ...sql.filter((l) => l !== '' && !l.startsWith('-- As') && !l.startsWith('-- Only')),
    ...results.map((r, i) => `${r.status === 'pass' ? 'ok  ' : 'FAIL'} ${dbs[i]!.name}: ${r.detail}`),
  ];
  const artifacts = [{ label: 'SQL', path: sqlPath }, { label: 'commands', path: commandsPath }];
  if (failed.length > 0) {
    return stepReport('users', 'fail', `${failed.length} of ${dbs.length} server(s) refuse ${dbUser}`, `${failed[0]!.hint || 'Run the SQL as the Entra admin.'} Press x to run it as the Entra admin "${answers.adminUser || '(set the admin field)'}", or run ${commandsPath} yourself, then r.`, lines, artifacts);
  }
  return stepReport('users', 'pass', `${dbUser} logs in through the broker on ${dbs.map((d) => d.name).join(', ')}`, '', lines, artifacts);
}

/** Runs the principal SQL on each chosen server as `answers.adminUser`, then checks as {@link checkUsers}. */
export async function runPrincipalSql(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal): Promise<StepReport> {
  const admin = answers.adminUser.trim();
  if (!admin) {
    const base = await checkUsers(sc, answers, signal);
    return { ...base, status: 'fail', detail: 'no Entra admin named', hint: 'Set the admin field (tab to it, e) to the server\'s Microsoft Entra admin, then x.' };
  }
  const who = await ensureIdentity(sc, signal);
  const dbUser = answers.dbUser || 'teleport';
  const sources = await sc.adminTokenSources();
  const outcome: string[] = [];
  for (const db of await chosenServers(sc, answers, signal)) {
    const statements = principalSql(db.protocol, dbUser, who?.claims).filter((l) => !l.startsWith('--'));
    try {
      const target = await resolveTarget(db);
      const { session, source } = await openAdminSession(sources, (getToken) =>
        openSession(
          {
            target: { ...target, connectTimeoutMs: 5_000 },
            dbUser: admin, // the broker adds @server for a single server
            dbName: defaultDbName(db),
            authorize: () => ({ allowed: true }),
            getToken,
            audit: NO_AUDIT,
            applicationName: 'azdb setup',
          },
          signal,
        ),
      );
      try {
        const { existed } = await runPrincipalStatements(session, statements);
        const via = sources.length > 1 ? ` (${source} token)` : '';
        outcome.push(`${db.name}: ${existed ? `${dbUser} exists already (not made again); ` : ''}ran ${statements.length} statement(s) as ${admin}${via}`);
      } finally {
        await session.close();
      }
    } catch (error) {
      outcome.push(`${db.name}: could not run the SQL as ${admin}: ${error instanceof AdminLoginFailed ? error.message : serverError(error).message}`);
    }
  }
  return checkUsers(sc, answers, signal, outcome);
}
