/**
 * `azdb proxy db`, `azdb db connect` and `azdb db logout`: tunnels to one database (PostgreSQL or
 * MySQL); the work is in src/core/tunnels.ts.
 */
import { resolve } from 'node:path';
import { isLoopbackHost } from '../../config/address.js';
import { loadRuntime } from '../../core/runtime.js';
import { clientCommandLine, clientInvocation, findClient, logout, passwordReference, recordTunnel, startTunnel, type LocalTunnel, type LoginFlags } from '../../core/tunnels.js';
import { shellWord } from '../../format.js';
import type { CliContext } from '../context.js';
import { ExitWithoutMessage } from '../exit.js';
import { noteIfSlow } from '../output.js';
import { interruptible, untilSignal } from '../signals.js';

/** How long open sessions may finish after Ctrl+C before they are cut. */
const DRAIN_MS = 10_000;

export interface ProxyFlags extends LoginFlags {
  host: string;
  port?: number;
  passwordFile?: string;
}

export async function proxyDb(ctx: CliContext, name: string, flags: ProxyFlags): Promise<void> {
  if (!isLoopbackHost(flags.host)) {
    ctx.out.warn(`listening on ${flags.host}: clients that do not ask for TLS reach the tunnel unencrypted, and its certificate names only localhost; prefer 127.0.0.1 or \`azdb serve\` with a TLS listener`);
  }
  const rt = await loadRuntime(ctx);
  const stop = untilSignal();
  try {
    const { passwordFile, ...request } = flags;
    const tunnel = await starting(ctx, name, stop, (signal) =>
      startTunnel(ctx, rt, name, { ...request, port: flags.port ?? 0, signal, ...(passwordFile ? { passwordFile: resolve(passwordFile) } : {}) }),
    );
    if (tunnel.passwordFileCreated) {
      ctx.out.info(`Wrote a new random password for this tunnel to ${tunnel.passwordFile} (mode 0600); the next \`azdb proxy db ${name} --password-file ${shellWord(tunnel.passwordFile!)}\` uses it again.`);
    }
    let loggedOut: () => void = () => {};
    const logout = new Promise<'logout'>((resolve) => (loggedOut = () => resolve('logout')));
    const removeRecord = await recordTunnel(rt, name, tunnel, async () => {
      await tunnel.close(0);
      loggedOut();
    });
    try {
      if (ctx.out.json) {
        ctx.out.line(`Tunnel to ${name} is listening; Ctrl+C to stop.`);
        process.stdout.write(`${JSON.stringify({ name, protocol: tunnel.protocol, host: tunnel.host, port: tunnel.port, user: tunnel.user, database: tunnel.database, password: tunnel.password, uri: tunnel.uri })}\n`);
      } else {
        printTunnel(ctx, name, tunnel);
      }
      const reason = await Promise.race([stop.promise, logout]);
      if (reason === 'logout') {
        ctx.out.info(`\`azdb db logout\` closed the tunnel to ${name}.`);
      } else {
        ctx.out.info(`${reason}: closing the tunnel (open sessions get up to ${DRAIN_MS / 1000} s)...`);
        await tunnel.close(DRAIN_MS);
      }
    } finally {
      await removeRecord();
    }
  } finally {
    stop.dispose();
    await rt.close();
  }
}

/**
 * The tunnel for a person. The password only to a terminal: stdout that is a file or a pipe (a
 * log, CI output) gets where to find it instead.
 */
function printTunnel(ctx: CliContext, name: string, tunnel: LocalTunnel): void {
  const client = tunnel.protocol === 'mysql' ? 'mysql' : 'psql';
  let password: string;
  if (tunnel.passwordFile) password = `in ${tunnel.passwordFile} (kept for every run with this --password-file; not your Azure credentials)`;
  else if (ctx.out.isTTY) password = `${tunnel.password}   (random for this tunnel; not your Azure credentials)`;
  else password = 'not printed: stdout is not a terminal (`--json` prints it; `--password-file FILE` keeps it in a file)';
  const note = passwordReference(tunnel, ctx.out.isTTY ? '<password above>' : '<password>');
  ctx.out.line(`Tunnel to ${name} (${tunnel.protocol}) on ${tunnel.host}:${tunnel.port}`);
  ctx.out.line(`  user      ${tunnel.user}`);
  ctx.out.line(`  database  ${tunnel.database}`);
  ctx.out.line(`  password  ${password}`);
  ctx.out.line(`  uri       ${tunnel.uri}`);
  if (tunnel.caFile) ctx.out.line(`  tls       for clients that ask; certificate from azdb's local CA ${tunnel.caFile}`);
  ctx.out.line(`  ${client.padEnd(8)}  ${clientCommandLine(tunnel, note)}`);
  ctx.out.line('Ctrl+C to stop.');
}

export async function dbConnect(ctx: CliContext, name: string, flags: LoginFlags): Promise<number> {
  const rt = await loadRuntime(ctx);
  try {
    const client = await findClient(ctx, rt.database(name).protocol);
    // Loaded here, not with the module: `azdb proxy db` (same module) needs neither conf nor execa.
    const [{ createUserStateStore }, { run }] = await Promise.all([import('../../config/user-state.js'), import('../../process/exec.js')]);
    const recent = createUserStateStore({ cwd: rt.stateDir });
    const stop = untilSignal();
    const tunnel = await starting(ctx, name, stop, (signal) => startTunnel(ctx, rt, name, { ...flags, host: '127.0.0.1', port: 0, recent, signal })).finally(() => stop.dispose());
    // `azdb db logout` elsewhere closes the tunnel: the client sees its connection end.
    const removeRecord = await recordTunnel(rt, name, tunnel, () => tunnel.close(0));
    // Ctrl+C belongs to the client (it cancels the running query through the tunnel: psql with a
    // CancelRequest, mysql with KILL QUERY on a new connection); azdb ignores it.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    try {
      const { args, env } = clientInvocation(tunnel, name, ctx.env);
      const result = await run(client.path, args, { stdio: 'inherit', env, extendEnv: false });
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

/** The start of a tunnel (its first Entra token): said when slow, ended at once by Ctrl+C / SIGTERM (exit 130 / 143). */
async function starting<T>(ctx: CliContext, name: string, stop: ReturnType<typeof untilSignal>, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const done = noteIfSlow(ctx.out, `Getting an Entra token for ${name} (Ctrl+C stops)...`);
  try {
    return await interruptible(stop, work);
  } finally {
    done();
  }
}

export async function dbLogout(ctx: CliContext, name: string | undefined): Promise<void> {
  const rt = await loadRuntime(ctx);
  await rt.close();
  const { closed, unreachable } = await logout(rt, name);
  const scope = name ? `"${name}"` : 'all databases';
  for (const u of unreachable) ctx.out.warn(`could not close the tunnel to ${u.name} on port ${u.port} (pid ${u.pid}): ${u.reason}`);
  if (ctx.out.json) {
    ctx.out.document({
      closed: closed.map((c) => ({ name: c.name, pid: c.pid, port: c.port })),
      unreachable: unreachable.map((u) => ({ name: u.name, pid: u.pid, port: u.port, reason: u.reason })),
      tokens_dropped: unreachable.length === 0,
    });
  } else {
    ctx.out.line(closed.length === 0 ? `No open tunnels for ${scope}.` : `Closed ${closed.length} tunnel(s) for ${scope}: ${closed.map((c) => `${c.name} on ${c.host}:${c.port} (pid ${c.pid})`).join(', ')}.`);
    ctx.out.line('azdb keeps Entra tokens only in the memory of the process holding a tunnel; the processes that held these carry on with their other tunnels.');
  }
  if (unreachable.length > 0) throw new ExitWithoutMessage(1);
}
