/**
 * `azdb proxy db`, `azdb db connect` and `azdb db logout`: tunnels to one database (PostgreSQL or
 * MySQL).
 */
import { chooseLogin } from '../../access/index.js';
import { isLoopbackHost } from '../../config/address.js';
import { resolveTarget } from '../../broker/resolve-target.js';
import { openTunnel, type Tunnel, type TunnelOptions } from '../../broker/tunnel.js';
import { createUserStateStore, type UserStateStore } from '../../config/user-state.js';
import { UserError } from '../../errors.js';
import { run } from '../../process/exec.js';
import { clientProgram } from '../../diagnostics/real-deps.js';
import type { CliContext } from '../main.js';
import { loadRuntime, type Runtime } from '../runtime.js';
import { untilSignal } from '../signals.js';
import { listTunnelRecords, writeTunnelRecord } from '../tunnel-records.js';

export interface LoginFlags {
  dbUser?: string;
  dbName?: string;
}

/** How long open sessions may finish after Ctrl+C before they are cut. */
const DRAIN_MS = 10_000;

/**
 * Opens a tunnel to `name` as the roles allow (`onEvent` sees its sessions: the TUI's broker panel).
 * With `recent`, the login is recorded there as a recent connection once the server took it (the
 * first session relayed), so a mistyped database name is never offered again.
 */
export async function startTunnel(
  ctx: CliContext,
  rt: Runtime,
  name: string,
  flags: LoginFlags & { host: string; port: number; onEvent?: TunnelOptions['onEvent']; recent?: Pick<UserStateStore, 'recordConnection'> },
): Promise<Tunnel> {
  const db = rt.database(name);
  const login = chooseLogin(rt.allowed(db), flags, db.protocol);
  const target = await resolveTarget(db);
  // Fail now, with the credential's own reason, rather than at the first client's login.
  await rt.tokens.getToken(rt.databaseScope);
  if (db.tls.mode === 'insecure') ctx.out.warn(`"${name}" uses tls.mode insecure: the server's certificate is not verified`);
  return openTunnel({
    target,
    host: flags.host,
    port: flags.port,
    dbUser: login.dbUser,
    dbName: login.dbName,
    authorize: rt.authorize(db),
    getToken: () => rt.tokens.getToken(rt.databaseScope),
    audit: rt.audit,
    onEvent: rememberingLogin(name, flags.recent, flags.onEvent),
  });
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

export async function proxyDb(ctx: CliContext, name: string, flags: LoginFlags & { host: string; port?: number }): Promise<void> {
  if (!isLoopbackHost(flags.host)) {
    ctx.out.warn(`listening on ${flags.host}: clients reach the tunnel unencrypted; prefer 127.0.0.1 or \`azdb serve\` with a TLS listener`);
  }
  const rt = await loadRuntime(ctx);
  const stop = untilSignal();
  try {
    const tunnel = await startTunnel(ctx, rt, name, { ...flags, port: flags.port ?? 0 });
    const removeRecord = await writeTunnelRecord(rt.stateDir, { pid: process.pid, name, host: tunnel.host, port: tunnel.port, started: new Date().toISOString() });
    try {
      if (ctx.out.json) {
        ctx.out.line(`Tunnel to ${name} is listening; Ctrl+C to stop.`);
        process.stdout.write(`${JSON.stringify({ name, protocol: tunnel.protocol, host: tunnel.host, port: tunnel.port, user: tunnel.user, database: tunnel.database, password: tunnel.password, uri: tunnel.uri })}\n`);
      } else {
        ctx.out.line(`Tunnel to ${name} (${tunnel.protocol}) on ${tunnel.host}:${tunnel.port}`);
        ctx.out.line(`  user      ${tunnel.user}`);
        ctx.out.line(`  database  ${tunnel.database}`);
        ctx.out.line(`  password  ${tunnel.password}   (random for this tunnel; not your Azure credentials)`);
        ctx.out.line(`  uri       ${tunnel.uri}`);
        ctx.out.line(`  ${(tunnel.protocol === 'mysql' ? 'mysql' : 'psql').padEnd(8)}  ${clientCommandLine(tunnel, '<password above>')}`);
        ctx.out.line('Ctrl+C to stop.');
      }
      const signal = await stop.promise;
      ctx.out.info(`${signal}: closing the tunnel (open sessions get up to ${DRAIN_MS / 1000} s)...`);
      await tunnel.close(DRAIN_MS);
    } finally {
      await removeRecord();
    }
  } finally {
    stop.dispose();
    await rt.close();
  }
}

export async function dbConnect(ctx: CliContext, name: string, flags: LoginFlags): Promise<number> {
  const rt = await loadRuntime(ctx);
  try {
    const client = await findClient(ctx, rt.database(name).protocol);
    const tunnel = await startTunnel(ctx, rt, name, { ...flags, host: '127.0.0.1', port: 0, recent: createUserStateStore({ cwd: rt.stateDir }) });
    const removeRecord = await writeTunnelRecord(rt.stateDir, { pid: process.pid, name, host: tunnel.host, port: tunnel.port, started: new Date().toISOString() });
    // Ctrl+C belongs to the client (it cancels the running query through the tunnel: psql with a
    // CancelRequest, mysql with KILL QUERY on a new connection); azdb ignores it.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    try {
      const { args, env } = clientInvocation(tunnel, name);
      const result = await run(client.path, args, { stdio: 'inherit', env });
      return result.exitCode;
    } finally {
      process.off('SIGINT', ignore);
      await tunnel.close(0);
      await removeRecord();
    }
  } finally {
    await rt.close();
  }
}

/** The client to run ({@link clientProgram}), or a UserError saying how to install one. */
export async function findClient(ctx: CliContext, protocol: 'postgres' | 'mysql'): Promise<{ name: string; path: string }> {
  const program = await clientProgram(ctx.env, protocol);
  if (program) return program;
  if (protocol === 'postgres') {
    throw new UserError('psql is not installed', { hint: 'Install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq).' });
  }
  throw new UserError('neither mariadb nor mysql is installed', { hint: 'Install a MySQL client (Debian/Ubuntu: apt-get install mariadb-client; macOS: brew install mysql-client).' });
}

/** The client command line to show a person, with `passwordNote` where the password goes (never the password). */
export function clientCommandLine(tunnel: Pick<Tunnel, 'protocol' | 'host' | 'port' | 'user' | 'database'>, passwordNote: string): string {
  if (tunnel.protocol === 'mysql') {
    return `MYSQL_PWD=${passwordNote} mysql --protocol=TCP -h ${tunnel.host} -P ${tunnel.port} -u ${tunnel.user}${tunnel.database ? ` ${tunnel.database}` : ''}`;
  }
  return `PGPASSWORD=${passwordNote} psql "host=${tunnel.host} port=${tunnel.port} user=${tunnel.user} dbname=${tunnel.database} sslmode=disable"`;
}

/** Arguments and environment of the client: the tunnel password only ever in the environment. */
export function clientInvocation(tunnel: Pick<Tunnel, 'protocol' | 'host' | 'port' | 'user' | 'database' | 'password'>, name: string): { args: string[]; env: Record<string, string> } {
  if (tunnel.protocol === 'mysql') {
    return {
      args: ['--protocol=TCP', '-h', tunnel.host, '-P', String(tunnel.port), '-u', tunnel.user, ...(tunnel.database ? [tunnel.database] : [])],
      env: { MYSQL_PWD: tunnel.password },
    };
  }
  return {
    args: ['-h', tunnel.host, '-p', String(tunnel.port), '-U', tunnel.user, '-d', tunnel.database],
    env: { PGPASSWORD: tunnel.password, PGSSLMODE: 'disable', PGAPPNAME: `azdb db connect ${name}` },
  };
}

export async function dbLogout(ctx: CliContext, name: string | undefined): Promise<void> {
  const rt = await loadRuntime(ctx);
  await rt.close();
  if (name) rt.database(name);
  const records = (await listTunnelRecords(rt.stateDir)).filter((r) => (name ? r.name === name : true) && r.pid !== process.pid);
  for (const record of records) process.kill(record.pid, 'SIGTERM');
  const scope = name ? `"${name}"` : 'all databases';
  const closed = records.map((r) => ({ name: r.name, pid: r.pid, port: r.port }));
  if (ctx.out.json) {
    ctx.out.document({ closed, tokens_dropped: true });
    return;
  }
  ctx.out.line(closed.length === 0 ? `No open tunnels for ${scope}.` : `Closed ${closed.length} tunnel(s) for ${scope}: ${closed.map((c) => `${c.name} on port ${c.port} (pid ${c.pid})`).join(', ')}.`);
  ctx.out.line('azdb keeps Entra tokens only in the memory of the process holding a tunnel, so none remain cached.');
}
