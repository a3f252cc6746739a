/** `azdb pools [--json]`: the connection pools of the running `azdb serve` (from its /pools). */
import { fetchPools, type PoolsReport } from '../../core/pools.js';
import type { CliContext } from '../context.js';

export async function pools(ctx: CliContext): Promise<void> {
  const report = await fetchPools(ctx);
  if (ctx.out.json) {
    ctx.out.document(report);
    return;
  }
  if (report.pools.length === 0) {
    ctx.out.line('No pooled listeners: add `pool:` to a database or a listener in azdb.yaml.');
    return;
  }
  for (const line of poolLines(report)) ctx.out.line(line);
}

export function poolLines(report: PoolsReport): string[] {
  const lines: string[] = [];
  for (const pool of report.pools) {
    lines.push(
      `${pool.listener}${pool.worker === undefined ? '' : ` (worker ${pool.worker})`}  ${pool.mode} mode, at most ${pool.max_server_connections} server connections per key, min_idle ${pool.min_idle}, idle_timeout ${pool.idle_timeout_seconds} s, server_lifetime ${pool.server_lifetime_seconds} s, max_client_wait ${pool.max_client_wait_seconds} s${pool.mode === 'transaction' ? `, max_prepared_statements ${pool.max_prepared_statements}` : ''}`,
    );
    if (pool.keys.length === 0) lines.push('  no server connections yet');
    for (const key of pool.keys) {
      lines.push(
        `  ${key.db_user}/${key.db_name} as ${key.identity}: clients ${key.clients_connected} connected (${key.clients_active} active, ${key.clients_waiting} waiting${key.clients_pinned > 0 ? `, ${key.clients_pinned} pinned` : ''}); servers ${key.servers_active} active, ${key.servers_idle} idle${key.servers_opening > 0 ? `, ${key.servers_opening} logging in` : ''}`,
      );
    }
  }
  return lines;
}
