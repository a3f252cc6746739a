/**
 * Step 3: a database user for the identity on each chosen server, with the privilege level the
 * answers chose on the databases they name for each engine. The check logs in through the broker
 * as that user, to the first of those databases; `runPrincipalSql` runs the SQL as the server's
 * Entra admin first.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MYSQL_DB_NAME, DEFAULT_POSTGRES_DB_NAME } from '../../../access/index.js';
import { NO_AUDIT } from '../../../broker/audit.js';
import { resolveTarget } from '../../../broker/resolve-target.js';
import { buildConfig } from '../../../config/generate.js';
import type { DatabaseConfig, Protocol } from '../../../config/schema.js';
import { runCheck, type CheckResult } from '../../../diagnostics/check.js';
import { checkLogin } from '../../../diagnostics/checks/login.js';
import { openSession, serverError } from '../../../diagnostics/db-client.js';
import type { DoctorSetup, DoctorState } from '../../../diagnostics/doctor-types.js';
import { realDoctorDeps } from '../../../diagnostics/real-deps.js';
import { AzdbError, errorMessage } from '../../../errors.js';
import { privilegeLevel, type SetupAnswers, type StepReport } from '../../api/setup.js';
import { AdminLoginFailed, applyPrincipalSql, openAdminSession, type AdminTokenSource } from '../admin-sql.js';
import { parseList } from '../artifacts.js';
import { stepReport, writeArtifact, type Identity, type SetupContext } from '../context.js';
import { ensureIdentity } from '../identity.js';
import { principalGrants, type PrincipalSql } from '../principal-grants.js';
import { adminConnection, PRINCIPAL_COMMANDS_FILE, PRINCIPAL_SQL_FILES, renderCommandsScript, renderPrincipalSql } from '../principal-script.js';
import { chosenServers } from '../servers.js';

const ENGINE_NAMES: Readonly<Record<Protocol, string>> = { postgres: 'PostgreSQL', mysql: 'MySQL' };
const DATABASES_FIELD: Readonly<Record<Protocol, string>> = { postgres: 'PostgreSQL databases', mysql: 'MySQL databases' };
/** The doctor's login hint when the server has no principal for the identity (checks/login.ts). */
const MISSING_PRINCIPAL = /has no Entra principal/;
/** What earlier versions wrote: one file for both engines, which no client can run. */
const OLD_SQL_FILE = 'principals.sql';

function databasesFor(answers: SetupAnswers, protocol: Protocol): string[] {
  return parseList(protocol === 'postgres' ? answers.pgDatabases : answers.mysqlDatabases);
}

/** The database the check logs in to: the first one named, else the engine's default. */
function loginDbName(answers: SetupAnswers, protocol: Protocol): string {
  return databasesFor(answers, protocol)[0] ?? (protocol === 'postgres' ? DEFAULT_POSTGRES_DB_NAME : DEFAULT_MYSQL_DB_NAME);
}

/** The doctor's login check for `dbUser` on one server, with setup's own token cache. */
async function loginCheck(sc: SetupContext, db: DatabaseConfig, dbUser: string, dbName: string, signal: AbortSignal): Promise<CheckResult> {
  const setup: DoctorSetup = {
    configFile: sc.configFile,
    config: buildConfig({ version: 'v1', azure: { cloud: sc.basis.cloud } }, sc.configFile),
    databases: [db],
    allowed: () => ({ dbUsers: [dbUser], dbNames: [dbName], deniedUsers: [], deniedNames: [] }),
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

/** The principal SQL of each engine among `dbs`. */
function plansFor(answers: SetupAnswers, who: Identity | undefined, dbs: readonly DatabaseConfig[]): Map<Protocol, PrincipalSql> {
  const level = privilegeLevel(answers.privilege);
  const dbUser = answers.dbUser || 'teleport';
  const protocols = [...new Set(dbs.map((db) => db.protocol))];
  return new Map(protocols.map((p) => [p, principalGrants(p, { dbUser, claims: who?.claims, level, databases: databasesFor(answers, p) })]));
}

/** One SQL file per engine in use and the script that runs them; files of engines not in use go. */
async function writePrincipalArtifacts(sc: SetupContext, answers: SetupAnswers, plans: Map<Protocol, PrincipalSql>, dbs: readonly DatabaseConfig[]) {
  const artifacts = [];
  for (const protocol of ['postgres', 'mysql'] as const) {
    const plan = plans.get(protocol);
    if (plan) artifacts.push({ label: `SQL (${ENGINE_NAMES[protocol]})`, path: await writeArtifact(sc, PRINCIPAL_SQL_FILES[protocol], renderPrincipalSql(plan)) });
    else await rm(join(sc.artifactDir, PRINCIPAL_SQL_FILES[protocol]), { force: true });
  }
  await rm(join(sc.artifactDir, OLD_SQL_FILE), { force: true });
  const [plan] = plans.values();
  const script = renderCommandsScript({
    user: plan?.user ?? answers.dbUser,
    level: privilegeLevel(answers.privilege),
    admin: answers.adminUser || '<entra-admin>',
    servers: dbs.map((db) => adminConnection(db, answers.adminUser || '<entra-admin>')),
  });
  artifacts.push({ label: 'commands', path: await writeArtifact(sc, PRINCIPAL_COMMANDS_FILE, script, 0o755) });
  return artifacts;
}

/** What the report shows of the SQL: per engine, the create and what is granted where. */
function planLines(plans: Map<Protocol, PrincipalSql>): string[] {
  return [...plans.values()].flatMap((plan) => [
    `${ENGINE_NAMES[plan.protocol]}: ${plan.create}`,
    `  then ${plan.databases.length === 0 ? 'no database named: nothing granted' : `${plan.level} on ${plan.databases.join(', ')}`}`,
  ]);
}

/** The SQL and commands for each chosen server, and whether the database user logs in; `before` leads the lines. */
export async function checkUsers(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal, before: string[] = []): Promise<StepReport> {
  const who = await ensureIdentity(sc, signal);
  const dbUser = answers.dbUser || 'teleport';
  const dbs = await chosenServers(sc, answers, signal);
  if (dbs.length === 0) {
    return stepReport('users', 'fail', 'no servers to set up: discovery found none for the types, regions and subscriptions of step 2', 'Go back to step 2 (b) and check its listing, or clear the servers field.');
  }
  const plans = plansFor(answers, who, dbs);
  const artifacts = await writePrincipalArtifacts(sc, answers, plans, dbs);
  const commandsPath = artifacts.at(-1)!.path;
  const results = await Promise.all(dbs.map((db) => loginCheck(sc, db, dbUser, loginDbName(answers, db.protocol), signal)));
  const failed = results.filter((r) => r.status === 'fail');
  const unnamed = [...plans.values()].filter((plan) => plan.databases.length === 0).map((plan) => plan.protocol);
  const lines = [
    ...before,
    `identity: ${who ? `${who.source}, object id ${who.claims?.objectId ?? '?'}, client id ${who.claims?.appId ?? '?'}` : 'none (step 1 failed): the SQL has placeholders'}`,
    ...planLines(plans),
    ...results.map((r, i) => `${r.status === 'pass' ? 'ok  ' : 'FAIL'} ${dbs[i]!.name}: ${r.detail}`),
  ];
  const runIt = (press: 'Press' | 'press') => `${press} x to run it as the Entra admin "${answers.adminUser || '(set the admin field)'}", or run ${commandsPath} yourself (az login as that admin first), then r.`;
  if (failed.length > 0) {
    // The doctor's hint for a missing principal names only its create statement; the step's files
    // hold that and the GRANTs. Any other failure (TLS, firewall...) keeps the doctor's hint first.
    const other = failed.find((r) => r.hint && !MISSING_PRINCIPAL.test(r.hint));
    return stepReport('users', 'fail', `${failed.length} of ${dbs.length} server(s) refuse ${dbUser}`, other ? `${other.hint} ${runIt('Press')}` : runIt('Press'), lines, artifacts);
  }
  if (unnamed.length > 0) {
    const fields = unnamed.map((p) => `"${DATABASES_FIELD[p]}"`).join(' and ');
    return stepReport('users', 'fail', `${dbUser} logs in but may use nothing on ${unnamed.map((p) => ENGINE_NAMES[p]).join(' or ')}: no database named`, `Name the databases ${dbUser} will use in ${fields} (tab to it, e), then ${runIt('press')}`, lines, artifacts);
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
  const dbs = await chosenServers(sc, answers, signal);
  const plans = plansFor(answers, who, dbs);
  const sources = await sc.adminTokenSources();
  const outcome: string[] = [];
  for (const db of dbs) {
    const plan = plans.get(db.protocol)!;
    try {
      const { existed, statements, source } = await asAdmin(db, admin, sources, signal, (open) => applyPrincipalSql(plan, open));
      const via = sources.length > 1 ? ` (${source} token)` : '';
      outcome.push(`${db.name}: ${existed ? `${plan.user} exists already (not made again); ` : ''}ran ${statements} statement(s) as ${admin}${via}`);
    } catch (error) {
      outcome.push(`${db.name}: could not run the SQL as ${admin}: ${error instanceof AdminLoginFailed ? error.message : serverError(error).message}`);
    }
  }
  return checkUsers(sc, answers, signal, outcome);
}

/**
 * Hands `work` a way to log in to any database of `db` as the admin: the first login tries each
 * token source in turn; later ones use the source the server took.
 */
async function asAdmin<T extends object>(
  db: DatabaseConfig,
  admin: string,
  sources: readonly AdminTokenSource[],
  signal: AbortSignal,
  work: (open: (database: string) => ReturnType<typeof openSession>) => Promise<T>,
): Promise<T & { source: string }> {
  const target = await resolveTarget(db);
  let chosen: readonly AdminTokenSource[] = sources;
  let used = '';
  const open = async (database: string) => {
    const { session, source } = await openAdminSession(chosen, (getToken) =>
      openSession(
        {
          target: { ...target, connectTimeoutMs: 5_000 },
          dbUser: admin, // the broker adds @server for a single server
          dbName: database,
          authorize: () => ({ allowed: true }),
          getToken,
          audit: NO_AUDIT,
          applicationName: 'azdb setup',
        },
        signal,
      ),
    );
    chosen = chosen.filter((s) => s.name === source);
    used = source;
    return session;
  };
  return { ...(await work(open)), source: used };
}
