/**
 * Doctor checks of the token (audience for the cloud) and of a real login through the broker,
 * with hints that tell the likely causes apart: principal missing, wrong audience, TLS name,
 * firewall.
 */
import { chooseLogin } from '../../access/index.js';
import { CLOUDS, type Cloud } from '../../azure/clouds.js';
import { AzdbError, errorMessage } from '../../errors.js';
import { WILDCARD } from '../../config/schema.js';
import { formatSeconds, result, type CheckResult } from '../check.js';
import { serverError } from '../db-client.js';
import { createPrincipalSql } from '../principal-sql.js';
import { audienceMatches, decodeTokenClaims } from '../../azure/token-claims.js';
import type { DoctorDeps, DoctorState } from '../doctor-types.js';
import { firewallHint } from './network.js';

export async function checkToken(state: DoctorState): Promise<CheckResult> {
  const title = 'Token audience';
  const { setup, db } = state;
  const cloud = CLOUDS[setup!.config.azure.cloud];
  const serverCloud = Object.values(CLOUDS).find((c) => [db!.host, state.target?.tls.serverName ?? ''].some((h) => h.endsWith(`.${c.postgresSuffix}`) || h.endsWith(`.${c.mysqlSuffix}`)));
  let token: string;
  try {
    token = await setup!.getToken();
  } catch (error) {
    return result('token', title, 'fail', errorMessage(error), error instanceof AzdbError && error.hint ? error.hint : 'Run `azdb creds`.');
  }
  const claims = decodeTokenClaims(token);
  if (!claims) return result('token', title, 'fail', 'the credential returned a token azdb cannot read (not a JWT)', 'Run `azdb creds`.');
  state.claims = claims;
  if (!audienceMatches(claims.audience, cloud.databaseResource)) {
    return result('token', title, 'fail', `the token is for ${claims.audience ?? 'no audience'}, but ${cloud.name} databases accept ${cloud.databaseResource}`, `Request tokens for ${cloud.databaseResource}/.default (azure.cloud in the config decides it).`);
  }
  if (serverCloud && serverCloud.name !== cloud.name) {
    return result('token', title, 'fail', `${db!.host} is a ${serverCloud.name} server, but azure.cloud is ${cloud.name}: its tokens are for ${cloud.databaseResource}, the server wants ${serverCloud.databaseResource}`, `Set azure.cloud: ${serverCloud.name} in the config.`);
  }
  state.tokenOk = true;
  return result('token', title, 'pass', `audience ${claims.audience} (${cloud.name}); object id ${claims.objectId ?? '?'}, app id ${claims.appId ?? '?'}${claims.expiresOn ? `, expires ${new Date(claims.expiresOn).toISOString()}` : ''}`);
}

/** The login the doctor tries: what `azdb db connect` would pick, else the first named user allowed. */
function pickLogin(state: DoctorState): { dbUser: string; dbName: string; note: string } | undefined {
  const db = state.db!;
  const allowed = state.setup!.allowed(db);
  // Asked for: the roles' rules apply, and a refusal is the check's answer (thrown to the runner).
  if (state.login?.dbUser !== undefined || state.login?.dbName !== undefined) return { ...chooseLogin(allowed, state.login, db.protocol), note: '' };
  try {
    return { ...chooseLogin(allowed, {}, db.protocol), note: '' };
  } catch {
    const dbUser = allowed.dbUsers.find((u) => u !== WILDCARD && !(allowed.deniedUsers ?? []).includes(u));
    if (!dbUser) return undefined;
    const named = allowed.dbNames.find((n) => n !== WILDCARD);
    const dbName = allowed.dbNames.includes(WILDCARD) ? (db.protocol === 'mysql' ? '' : 'postgres') : (named ?? '');
    return { dbUser, dbName, note: ` (one of several the roles allow)` };
  }
}

export async function checkLogin(state: DoctorState, deps: DoctorDeps, signal: AbortSignal): Promise<CheckResult> {
  const title = 'Login through the broker';
  const { setup, db, target } = state;
  let login;
  try {
    login = pickLogin(state);
  } catch (error) {
    return result('login', title, 'fail', errorMessage(error), error instanceof AzdbError && error.hint ? error.hint : '');
  }
  if (!login) {
    return result('login', title, 'skip', 'the roles name no database user for this database (only "*"): the login was not checked', `Name one: \`azdb doctor ${db!.name} --db-user USER\`.`);
  }
  const session = await deps.openSession(
    {
      target: { ...target!, connectTimeoutMs: 5_000 },
      dbUser: login.dbUser,
      dbName: login.dbName,
      authorize: setup!.authorize(db!),
      getToken: () => setup!.getToken(),
      audit: setup!.audit,
      applicationName: 'azdb doctor',
    },
    signal,
  ).catch((error: unknown) => error as Error);
  if (session instanceof Error) return loginFailure(state, login.dbUser, session);
  try {
    const sql = db!.protocol === 'mysql' ? 'select current_user() as who, version() as version' : 'select current_user as who, version() as version';
    const { rows } = await session.query(sql);
    const row = rows[0] ?? {};
    const version = String(row.version ?? '').split(/\s+on\s+|,/)[0];
    return result('login', title, 'pass', `logged in as ${login.dbUser}${login.note}${login.dbName ? ` to ${login.dbName}` : ''}; the server says current user ${String(row.who ?? '?')}, ${version}`);
  } catch (error) {
    return loginFailure(state, login.dbUser, error);
  } finally {
    await session.close();
  }
}

function loginFailure(state: DoctorState, dbUser: string, error: unknown): CheckResult {
  const title = 'Login through the broker';
  const db = state.db!;
  const e = serverError(error);
  const message = e.message;
  const detail = `${dbUser} could not log in: ${message}${e.code ? ` (${e.code}${e.errno ? ` ${e.errno}` : ''})` : ''}`;
  const cloud: Cloud = CLOUDS[state.setup!.config.azure.cloud];
  if (/valid audience/i.test(message)) {
    return result('login', title, 'fail', detail, `The token's audience is wrong for this server: set azure.cloud to the server's cloud (tokens now are for ${cloud.databaseResource}).`);
  }
  if (/token has expired|not yet valid/i.test(message)) {
    return result('login', title, 'fail', detail, 'Check this machine\'s clock; then run `azdb creds`.');
  }
  if (/Service Principals cannot generate/i.test(message)) {
    return result('login', title, 'fail', detail, `The role "${dbUser}" was made for a person, but azdb logs in as an application. As the server's Entra admin, drop it and run: ${createPrincipalSql(db.protocol, dbUser, state.claims, singleServerName(db))}`);
  }
  if (/Invalid Username format|server name you tried cannot be found|username@/i.test(message)) {
    return result('login', title, 'fail', detail, `This is a single server: set azure: {server_kind: single, server_name: ...} for "${db.name}" so azdb logs in as user@server.`);
  }
  if (/not allowed by|roles? (do|does) not allow|azdb db ls/i.test(message)) {
    return result('login', title, 'fail', detail, 'Run `azdb db ls` to see the users and database names your roles allow.');
  }
  if (/certificate|TLS|altnames|self.signed|verif/i.test(message)) {
    return result('login', title, 'fail', detail, `TLS to the server failed: check tls.server_name and tls.ca_file of "${db.name}" (the TLS check above says which).`);
  }
  if (/timed out|ETIMEDOUT|timeout/i.test(message)) {
    return result('login', title, 'fail', detail, firewallHint(db.host, db.port));
  }
  if (e.errno === 1044 || (e.code === '42501' && /permission denied for database/i.test(message))) {
    return result('login', title, 'fail', detail, `${dbUser} exists but may not use this database: as the server's Microsoft Entra admin, grant it (\`azdb setup\`, step 3, writes the GRANTs).`);
  }
  if (e.code === '28P01' || e.errno === 1045 || /password authentication failed|Access denied/i.test(message)) {
    const sql = createPrincipalSql(db.protocol, dbUser, state.claims, singleServerName(db));
    const who = state.claims ? ` (object id ${state.claims.objectId ?? '?'}, app id ${state.claims.appId ?? '?'})` : '';
    const where = db.protocol === 'mysql' ? 'Connected as the server\'s Microsoft Entra admin' : 'As the server\'s Microsoft Entra admin, in the postgres database';
    return result(
      'login',
      title,
      'fail',
      detail,
      `The server has no Entra principal "${dbUser}" for this identity${who}, or it was made for another identity. ${where}, run: ${sql} — and make sure the server has Microsoft Entra authentication enabled with an Entra admin set.`,
    );
  }
  if (/database .* does not exist|Unknown database/i.test(message)) {
    return result('login', title, 'fail', detail, 'The database name does not exist on the server: check db_names in your roles.');
  }
  return result('login', title, 'fail', detail, e.hint ?? `Run \`azdb db connect ${db.name}\` to see the server's full answer.`);
}

export function loginTimeout(state: DoctorState) {
  return (limitMs: number) => ({
    detail: `the login through the broker did not finish within ${formatSeconds(limitMs)}`,
    hint: firewallHint(state.db!.host, state.db!.port),
  });
}

function singleServerName(db: DoctorState['db']): string | undefined {
  return db?.azure?.server_kind === 'single' ? db.azure.server_name : undefined;
}
