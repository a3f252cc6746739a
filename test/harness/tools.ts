/**
 * External programs the integration tests use (Debian's psql, mysql, pgbouncer, haproxy, tmux...).
 * A missing one skips its tests with the reason, or fails the run when AZDB_REQUIRE_SERVERS=1
 * (what .ci/run sets, after installing them).
 */
import { which } from '../../src/process/exec.js';

export interface Tool {
  name: string;
  path: string | undefined;
  /** A reason to skip, or false when the tool is here. */
  skip: string | false;
}

const SEARCH_PATH = [process.env.PATH ?? '', '/usr/sbin', '/usr/local/sbin', '/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/15/bin'].join(':');

export async function findTool(name: string, alternatives: string[] = []): Promise<Tool> {
  for (const candidate of [name, ...alternatives]) {
    const path = await which(candidate, { PATH: SEARCH_PATH });
    if (path) return { name, path, skip: false };
  }
  const reason = `${name} is not installed (Debian: apt-get install ${debianPackage(name)})`;
  if (process.env.AZDB_REQUIRE_SERVERS === '1') {
    throw new Error(`AZDB_REQUIRE_SERVERS=1 but ${reason}`);
  }
  return { name, path: undefined, skip: reason };
}

function debianPackage(name: string): string {
  const packages: Record<string, string> = {
    psql: 'postgresql-client',
    pgbench: 'postgresql-contrib',
    mysql: 'mariadb-client',
    mariadb: 'mariadb-client',
    mariadbd: 'mariadb-server',
    pgbouncer: 'pgbouncer',
    haproxy: 'haproxy',
    tmux: 'tmux',
  };
  return packages[name] ?? name;
}
