/**
 * Tunnels to one database (PostgreSQL or MySQL), as `azdb proxy db`, `azdb db connect`, the
 * picker and `azdb db logout` use them: open one as the roles allow (TLS offered with azdb's local
 * certificate, the password random or kept in a file), describe how a client gets in (the password
 * only ever in the client's environment), and close the ones other processes hold.
 */
import { join } from 'node:path';
import { chooseLogin } from '../access/index.js';
import { localTls, type LocalTls } from '../broker/local-tls.js';
import { loadOrCreatePasswordFile } from '../broker/password-file.js';
import { resolveTarget } from '../broker/resolve-target.js';
import { openTunnel, type Tunnel, type TunnelOptions } from '../broker/tunnel.js';
import { poolLimits } from '../broker/pool/pool-limits.js';
import type { UserStateStore } from '../config/user-state.js';
import { errorMessage, UserError } from '../errors.js';
import { shellWord } from '../format.js';
import { clientEnvironment } from './client-env.js';
import type { CoreContext } from './context.js';
import type { Runtime } from './runtime.js';
import { holdTunnel, requestClose, type ClosedTunnel } from './tunnel-control.js';
import { listTunnelRecords, type TunnelRecord } from './tunnel-records.js';

export interface LoginFlags {
  dbUser?: string;
  dbName?: string;
}

export interface TunnelRequest extends LoginFlags {
  host: string;
  port: number;
  /**
   * Keep the password in this file, so a client set up once keeps working: read when it exists
   * (the user's alone, a strong password), else a new random one written there with mode 0600.
   */
  passwordFile?: string;
  /** Sees the tunnel's sessions (the picker's broker panel). */
  onEvent?: TunnelOptions['onEvent'];
  /** Where the login is remembered once the server took it (the first session relayed). */
  recent?: Pick<UserStateStore, 'recordConnection'>;
  /** Stops the start (the first token fetch) at once: Ctrl+C, esc in the picker. */
  signal?: AbortSignal;
}

/** A tunnel as the core opens it: with what a client needs to verify it and where its password is kept. */
export interface LocalTunnel extends Tunnel {
  /** The CA of the tunnel's TLS certificate (`sslrootcert`); undefined when TLS could not be set up. */
  caFile: string | undefined;
  /** Where the password is kept ({@link TunnelRequest.passwordFile}). */
  passwordFile: string | undefined;
  /** True when the password file was written just now, with a new password. */
  passwordFileCreated: boolean;
}

/**
 * Opens a tunnel to `name` as the roles allow. With `recent`, the login is recorded there as a
 * recent connection once the server took it, so a mistyped database name is never offered again.
 */
export async function startTunnel(ctx: CoreContext, rt: Runtime, name: string, request: TunnelRequest): Promise<LocalTunnel> {
  const db = rt.database(name);
  const login = chooseLogin(rt.allowed(db), request, db.protocol);
  const kept = request.passwordFile ? await loadOrCreatePasswordFile(request.passwordFile, `the password file of the tunnel to ${name}`) : undefined;
  const target = await resolveTarget(db);
  // Fail now, with the credential's own reason, rather than at the first client's login.
  await rt.tokens.getToken(rt.databaseScope, { signal: request.signal });
  request.signal?.throwIfAborted();
  if (db.tls.mode === 'insecure') ctx.log.warn(`"${name}" uses tls.mode insecure: the server's certificate is not verified`);
  const tls = await offeredTls(ctx, rt.stateDir);
  const tunnel = await openTunnel({
    target,
    host: request.host,
    port: request.port,
    dbUser: login.dbUser,
    dbName: login.dbName,
    ...(kept ? { password: kept.password } : {}),
    // Offered, not required: plain clients (and `azdb db connect`'s psql) keep working.
    ...(tls ? { clientTls: tls.context } : {}),
    authorize: rt.authorize(db),
    getToken: (signal) => rt.tokens.getToken(rt.databaseScope, { signal }),
    audit: rt.audit,
    onEvent: rememberingLogin(name, request.recent, request.onEvent),
    ...(db.pool ? { pool: poolLimits(db.pool) } : {}),
  });
  // Assigned, not spread: the tunnel's session count is a getter.
  return Object.assign(tunnel, { caFile: tls?.caFile, passwordFile: request.passwordFile, passwordFileCreated: kept?.created ?? false });
}

/** azdb's local TLS; a tunnel without it still serves plain clients, so a failure is a warning. */
async function offeredTls(ctx: CoreContext, stateDir: string): Promise<LocalTls | undefined> {
  try {
    return await localTls(stateDir);
  } catch (error) {
    ctx.log.warn(`the tunnel offers no TLS (clients with sslmode=require cannot connect): ${errorMessage(error)}`);
    return undefined;
  }
}

/** Where the picker keeps the tunnel password of database `name` (0600, in a 0700 folder). */
export function tunnelPasswordFile(stateDir: string, name: string): string {
  return join(stateDir, 'tunnel-passwords', `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.password`);
}

function rememberingLogin(name: string, recent: Pick<UserStateStore, 'recordConnection'> | undefined, onEvent: TunnelOptions['onEvent']): TunnelOptions['onEvent'] {
  if (!recent) return onEvent;
  let remembered = false;
  return (event) => {
    if (event.type === 'relaying' && !remembered) {
      remembered = true;
      try {
        recent.recordConnection({ name, db_user: event.dbUser, db_name: event.dbName });
      } catch {
        // Recent connections are a convenience; never fail a connection over them.
      }
    }
    onEvent?.(event);
  };
}

/**
 * Lists the tunnel of this process for `azdb db logout` in other shells, which may ask to close
 * it (`close`: the holder's way to close it then). Returns the release, for when it is closed.
 */
export function recordTunnel(rt: Runtime, name: string, tunnel: Pick<Tunnel, 'host' | 'port'>, close: () => Promise<void>): Promise<() => Promise<void>> {
  return holdTunnel(rt.stateDir, { name, host: tunnel.host, port: tunnel.port, close });
}

/** The client to run (psql, mariadb or mysql on PATH), or a UserError saying how to install one. */
export async function findClient(ctx: Pick<CoreContext, 'env'>, protocol: 'postgres' | 'mysql'): Promise<{ name: string; path: string }> {
  // Loaded here: its module brings pg, mysql2 and execa, which `azdb proxy db` never needs.
  const { clientProgram } = await import('../diagnostics/real-deps.js');
  const program = await clientProgram(ctx.env, protocol);
  if (program) return program;
  if (protocol === 'postgres') {
    throw new UserError('psql is not installed', { hint: 'Install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq).' });
  }
  throw new UserError('neither mariadb nor mysql is installed', { hint: 'Install a MySQL client (Debian/Ubuntu: apt-get install mariadb-client; macOS: brew install mysql-client).' });
}

type ClientView = Pick<LocalTunnel, 'protocol' | 'host' | 'port' | 'user' | 'database' | 'caFile'>;

/**
 * The client command line to show a person, with `passwordNote` where the password goes (never
 * the password), verifying the tunnel's certificate where it has one.
 */
export function clientCommandLine(tunnel: ClientView, passwordNote: string): string {
  if (tunnel.protocol === 'mysql') {
    const tls = tunnel.caFile ? ` --ssl-ca=${shellWord(tunnel.caFile)}` : '';
    return `MYSQL_PWD=${passwordNote} mysql --protocol=TCP -h ${tunnel.host} -P ${tunnel.port} -u ${tunnel.user}${tls}${tunnel.database ? ` ${tunnel.database}` : ''}`;
  }
  const tls = tunnel.caFile ? `sslmode=verify-full sslrootcert=${conninfoValue(tunnel.caFile)}` : 'sslmode=disable';
  return `PGPASSWORD=${passwordNote} psql "host=${tunnel.host} port=${tunnel.port} user=${tunnel.user} dbname=${tunnel.database} ${tls}"`;
}

/** What stands for the password in a command line to show: the password file read by the shell, else `fallback`. */
export function passwordReference(tunnel: Pick<LocalTunnel, 'passwordFile'>, fallback: string): string {
  return tunnel.passwordFile ? `"$(cat ${shellWord(tunnel.passwordFile)})"` : fallback;
}

/**
 * Arguments and environment of the client azdb starts: the tunnel password only ever in the
 * environment, which carries nothing else of azdb's (see {@link clientEnvironment}); run it with
 * `extendEnv: false`.
 */
export function clientInvocation(tunnel: ClientView & Pick<Tunnel, 'password'>, name: string, parentEnv: NodeJS.ProcessEnv): { args: string[]; env: Record<string, string> } {
  if (tunnel.protocol === 'mysql') {
    return {
      // With the CA, a client that verifies by default (MariaDB 11.4+) can; others encrypt.
      args: ['--protocol=TCP', '-h', tunnel.host, '-P', String(tunnel.port), '-u', tunnel.user, ...(tunnel.caFile ? [`--ssl-ca=${tunnel.caFile}`] : []), ...(tunnel.database ? [tunnel.database] : [])],
      env: clientEnvironment(parentEnv, 'mysql', { MYSQL_PWD: tunnel.password }),
    };
  }
  return {
    args: ['-h', tunnel.host, '-p', String(tunnel.port), '-U', tunnel.user, '-d', tunnel.database],
    env: clientEnvironment(parentEnv, 'postgres', { PGPASSWORD: tunnel.password, PGSSLMODE: 'disable', PGAPPNAME: `azdb db connect ${name}` }),
  };
}

/** A conninfo value (quoted as libpq reads it) inside the double-quoted psql argument of {@link clientCommandLine}. */
function conninfoValue(text: string): string {
  if (/^[\w./@%+=:,-]+$/.test(text)) return text;
  const quoted = `'${text.replace(/[\\']/g, '\\$&')}'`;
  return quoted.replace(/[\\"$`]/g, '\\$&');
}

export interface LogoutOutcome {
  closed: Array<ClosedTunnel & { pid: number }>;
  /** Holders that could not be asked (no control socket, no answer), with why. */
  unreachable: Array<{ pid: number; name: string; port: number; reason: string }>;
}

/**
 * `azdb db logout [NAME]`: asks every other azdb process holding a tunnel to NAME (or to any
 * database) to close exactly those tunnels; the processes themselves carry on. Tokens live only
 * in their memory.
 */
export async function logout(rt: Runtime, name: string | undefined): Promise<LogoutOutcome> {
  if (name) rt.database(name);
  const records = (await listTunnelRecords(rt.stateDir)).filter((r) => (name ? r.name === name : true) && r.pid !== process.pid);
  const outcome: LogoutOutcome = { closed: [], unreachable: [] };
  const byHolder = new Map<number, TunnelRecord[]>();
  for (const record of records) byHolder.set(record.pid, [...(byHolder.get(record.pid) ?? []), record]);
  await Promise.all(
    [...byHolder].map(async ([pid, held]) => {
      const control = held.find((r) => r.control)?.control;
      try {
        if (!control) throw new Error('it has no control socket (an older azdb): stop it where it runs');
        for (const closed of await requestClose(control, name)) outcome.closed.push({ ...closed, pid });
      } catch (error) {
        for (const r of held) outcome.unreachable.push({ pid, name: r.name, port: r.port, reason: errorMessage(error) });
      }
    }),
  );
  return outcome;
}
