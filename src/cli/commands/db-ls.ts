/**
 * `azdb db ls [--json]`: the databases the roles let you use, with their labels and the database
 * users and names allowed. Static databases from the config; discovered ones join them with the
 * discovery issue.
 */
import type { CliContext } from '../main.js';
import { loadRuntime } from '../runtime.js';

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
  const listing: DatabaseListing[] = rt.config.databases
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

function printTable(ctx: CliContext, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  ctx.out.line(line(header));
  ctx.out.line(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) ctx.out.line(line(row));
}
