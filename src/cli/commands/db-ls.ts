/**
 * `azdb db ls [--json]`: the databases the roles let you use, with their labels and the database
 * users and names allowed: static databases from the config and those discovery finds through
 * ARM. Scopes discovery could not list are warnings on stderr (which scope, why, what to grant);
 * the rest is still listed.
 */
import type { CliContext } from '../main.js';
import { loadRuntime, type Runtime } from '../runtime.js';

export interface DatabaseListing {
  name: string;
  protocol: 'postgres' | 'mysql';
  uri: string;
  labels: Record<string, string>;
  db_users: string[];
  db_names: string[];
}

export async function dbLs(ctx: CliContext): Promise<void> {
  const rt = await loadRuntime(ctx);
  await rt.close();
  warnDiscovery(ctx, rt);
  const listing: DatabaseListing[] = rt
    .databases()
    .map((db) => {
      const allowed = rt.allowed(db);
      return { name: db.name, protocol: db.protocol, uri: db.uri, labels: { ...db.labels }, db_users: allowed.dbUsers, db_names: allowed.dbNames };
    })
    .filter((db) => db.db_users.length > 0)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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

function warnDiscovery(ctx: CliContext, rt: Runtime): void {
  for (const failure of rt.discovery?.errors ?? []) {
    ctx.out.warn(`discovery could not list ${failure.scope}: ${failure.reason}${failure.permission ? ` (needs ${failure.permission})` : ''}`);
    ctx.out.info(`  hint: ${failure.hint}`);
  }
  for (const name of rt.shadowed) {
    ctx.out.warn(`discovered server "${name}" is not listed: a database under \`databases:\` has that name`);
  }
}

function printTable(ctx: CliContext, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  ctx.out.line(line(header));
  ctx.out.line(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) ctx.out.line(line(row));
}
