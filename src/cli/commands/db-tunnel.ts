/**
 * `azdb proxy db`, `azdb db connect` and `azdb db logout`: tunnels to one database (PostgreSQL or
 * MySQL); the work is in src/core/tunnels.ts.
 */
import { isLoopbackHost } from '../../config/address.js';
import { createUserStateStore } from '../../config/user-state.js';
import { loadRuntime } from '../../core/runtime.js';
import { clientCommandLine, clientInvocation, findClient, logout, recordTunnel, startTunnel, type LoginFlags } from '../../core/tunnels.js';
import { run } from '../../process/exec.js';
import type { CliContext } from '../context.js';
import { untilSignal } from '../signals.js';

export type { LoginFlags } from '../../core/tunnels.js';

/** How long open sessions may finish after Ctrl+C before they are cut. */
const DRAIN_MS = 10_000;

export async function proxyDb(ctx: CliContext, name: string, flags: LoginFlags & { host: string; port?: number }): Promise<void> {
  if (!isLoopbackHost(flags.host)) {
    ctx.out.warn(`listening on ${flags.host}: clients reach the tunnel unencrypted; prefer 127.0.0.1 or \`azdb serve\` with a TLS listener`);
  }
  const rt = await loadRuntime(ctx);
  const stop = untilSignal();
  try {
    const tunnel = await startTunnel(ctx, rt, name, { ...flags, port: flags.port ?? 0 });
    const removeRecord = await recordTunnel(rt, name, tunnel);
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
    const removeRecord = await recordTunnel(rt, name, tunnel);
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

export async function dbLogout(ctx: CliContext, name: string | undefined): Promise<void> {
  const rt = await loadRuntime(ctx);
  await rt.close();
  const records = await logout(rt, name);
  const scope = name ? `"${name}"` : 'all databases';
  const closed = records.map((r) => ({ name: r.name, pid: r.pid, port: r.port }));
  if (ctx.out.json) {
    ctx.out.document({ closed, tokens_dropped: true });
    return;
  }
  ctx.out.line(closed.length === 0 ? `No open tunnels for ${scope}.` : `Closed ${closed.length} tunnel(s) for ${scope}: ${closed.map((c) => `${c.name} on port ${c.port} (pid ${c.pid})`).join(', ')}.`);
  ctx.out.line('azdb keeps Entra tokens only in the memory of the process holding a tunnel, so none remain cached.');
}
