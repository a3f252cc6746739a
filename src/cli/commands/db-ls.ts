/**
 * `azdb db ls [--json]`: the databases the roles let you use, with their labels and the database
 * users and names allowed: static databases from the config and those discovery finds through
 * ARM. Scopes discovery could not list are warnings on stderr (which scope, why, what to grant);
 * the rest is still listed.
 */
import { discoveryWarnings, listDatabases } from '../../core/databases.js';
import { configPath, loadRuntime } from '../../core/runtime.js';
import { ExternalError } from '../../errors.js';
import type { CliContext } from '../context.js';

export async function dbLs(ctx: CliContext): Promise<void> {
  const rt = await loadRuntime(ctx);
  await rt.close();
  for (const warning of discoveryWarnings(rt)) {
    ctx.out.warn(warning.message);
    if (warning.hint) ctx.out.info(`  hint: ${warning.hint}`);
  }
  const listing = listDatabases(rt);
  const failures = rt.discovery?.errors ?? [];
  if (listing.length === 0 && failures.length > 0 && (rt.discovery?.databases.length ?? 0) === 0) {
    // Nothing to list because discovery failed: that is a failure, not an empty result.
    throw new ExternalError(`no databases: discovery could not list any server (${failures.length} scope${failures.length === 1 ? '' : 's'} failed)`, {
      hint: `${failures[0]!.hint} \`azdb --config ${configPath(ctx)} doctor\` checks the credential.`,
    });
  }
  if (ctx.out.json) {
    ctx.out.document(listing);
    return;
  }
  if (listing.length === 0) {
    ctx.out.line('No databases you may use. Check `databases:` and `broker.roles` in the config (`azdb config check`).');
    return;
  }
  const rows = listing.map((db) => [
    db.name,
    db.protocol,
    db.uri,
    db.db_users.join(', '),
    db.db_names.join(', '),
    Object.entries(db.labels).map(([k, v]) => `${k}=${v}`).join(' '),
  ]);
  printTable(ctx, ['Name', 'Protocol', 'URI', 'Allowed Users', 'Database Names', 'Labels'], rows);
}

function printTable(ctx: CliContext, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  ctx.out.line(line(header));
  ctx.out.line(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) ctx.out.line(line(row));
}
