/**
 * Step 3's artifacts as text: one SQL file per engine in use (`principals-postgres.sql` for psql,
 * `principals-mysql.sql` for the mariadb client) and `principals-commands.sh`, a script that
 * runs them on every chosen server as its Microsoft Entra admin. Pure.
 *
 * The script gets the admin's token from the Azure CLI into a shell variable and hands it to the
 * clients in PGPASSWORD / MYSQL_PWD (never in argv, never on disk), and verifies TLS: psql with
 * sslmode=verify-full, the mariadb client with --ssl-verify-server-cert (it answers the server's
 * mysql_clear_password request itself, inside TLS; the old --enable-cleartext-plugin is obsolete).
 */
import { isIP } from 'node:net';
import { upstreamLoginUser } from '../../broker/target.js';
import type { DatabaseConfig, Protocol } from '../../config/schema.js';
import type { PrincipalSql } from './principal-grants.js';

export const PRINCIPAL_SQL_FILES: Readonly<Record<Protocol, string>> = {
  postgres: 'principals-postgres.sql',
  mysql: 'principals-mysql.sql',
};
export const PRINCIPAL_COMMANDS_FILE = 'principals-commands.sh';
/** Where Debian and Ubuntu keep the system's CA bundle, which holds Azure's roots. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export function renderPrincipalSql(sql: PrincipalSql): string {
  return sql.protocol === 'postgres' ? renderPostgres(sql) : renderMySql(sql);
}

function header(sql: PrincipalSql, engine: string, client: string): string[] {
  return [
    `-- azdb setup, step 3: the Microsoft Entra database user "${sql.user}", ${sql.level}, on ${engine}.`,
    `-- Run it as the server's Entra admin with ${client}; ${PRINCIPAL_COMMANDS_FILE} does, on every server.`,
    '-- It can run again: a user that exists is kept, and the GRANTs are the same.',
  ];
}

function renderPostgres(sql: PrincipalSql): string {
  const lines = [
    ...header(sql, 'PostgreSQL', `psql, connected to the ${sql.createDatabase} database`),
    '-- Only for an identity of another tenant, first: SET aad_validate_oids_in_tenant = off;',
    '\\set ON_ERROR_STOP on',
    sql.create,
  ];
  if (sql.grants.length === 0) lines.push('-- No PostgreSQL database named: nothing is granted.');
  for (const { database, statements } of sql.grants) {
    lines.push('', `-- ${sql.level} on the database ${database}`, `\\connect ${psqlArgument(database)}`, ...statements);
  }
  return `${lines.join('\n')}\n`;
}

function renderMySql(sql: PrincipalSql): string {
  const lines = [
    ...header(sql, 'MySQL', 'the mariadb (or mysql) client'),
    '-- Only for an identity of another tenant, first: SET aad_auth_validate_oids_in_tenant = OFF;',
    sql.create,
    ...(sql.grants.length === 0 ? ['-- No MySQL database named: nothing is granted.'] : sql.grants.flatMap((g) => g.statements)),
  ];
  return `${lines.join('\n')}\n`;
}

/** A psql meta-command argument: bare when plain, else single-quoted. */
function psqlArgument(text: string): string {
  return /^[\w.-]+$/.test(text) ? text : `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** How the script reaches one server as the admin. */
export interface AdminConnection {
  name: string;
  protocol: Protocol;
  /** The name the certificate is checked against (and, without `hostaddr`, connected to). */
  host: string;
  /** PostgreSQL only: the IP to connect to when the config reaches the server at one. */
  hostaddr: string;
  port: number;
  /** The admin's login name (`admin@server` on single servers). */
  user: string;
  /** The server's own CA file from the config, else undefined: the script's AZURE_CA_FILE. */
  caFile: string | undefined;
}

export function adminConnection(db: Pick<DatabaseConfig, 'name' | 'protocol' | 'host' | 'port' | 'azure' | 'tls'>, admin: string): AdminConnection {
  const user = upstreamLoginUser({ serverKind: db.azure?.server_kind ?? 'flexible', ...(db.azure?.server_name ? { serverName: db.azure.server_name } : {}) }, admin);
  const serverName = db.tls.server_name;
  // psql checks the certificate against `host` and connects to `hostaddr` when given: a server
  // reached at an IP (a tunnel, the demo) keeps its Azure name for the check. The mariadb client
  // has no such split: it checks the address it connects to.
  const byIp = db.protocol === 'postgres' && isIP(db.host) !== 0 && serverName !== undefined;
  return {
    name: db.name,
    protocol: db.protocol,
    host: byIp ? serverName : db.host,
    hostaddr: byIp ? db.host : '',
    port: db.port,
    user,
    caFile: db.tls.ca_file,
  };
}

export function renderCommandsScript(options: { user: string; level: string; admin: string; servers: readonly AdminConnection[] }): string {
  const engines = new Set(options.servers.map((s) => s.protocol));
  const ca = (s: AdminConnection) => (s.caFile ? shellQuote(s.caFile) : '"$AZURE_CA_FILE"');
  const lines = [
    '#!/usr/bin/env bash',
    `# azdb setup, step 3: makes the Microsoft Entra database user "${options.user}" (${options.level}) on`,
    `# each server below, as its Entra admin "${options.admin}". Sign in to the Azure CLI as that admin first`,
    '# (az login). The admin\'s token is fetched here and handed to psql / mariadb in PGPASSWORD /',
    '# MYSQL_PWD: never on a command line, never written to disk.',
    '# TLS is verified (psql sslmode=verify-full, mariadb --ssl-verify-server-cert) against the server\'s CA',
    '# file, or AZURE_CA_FILE: Azure\'s servers chain to DigiCert Global Root G2 or Microsoft RSA Root',
    `# Certificate Authority 2017 (older servers: DigiCert Global Root CA), all in ${SYSTEM_CA_BUNDLE}`,
    '# (Debian, Ubuntu); elsewhere put those roots in one PEM file and set AZURE_CA_FILE to it.',
    'set -uo pipefail',
    'here=$(cd "$(dirname "$0")" && pwd)',
    `AZURE_CA_FILE=\${AZURE_CA_FILE:-${SYSTEM_CA_BUNDLE}}`,
    '',
    'command -v az >/dev/null || { echo "needs the Azure CLI (az), signed in as the Entra admin" >&2; exit 1; }',
    'TOKEN=$(az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv) && [ -n "$TOKEN" ] ||',
    '  { echo "no token from the Azure CLI: az login as the Entra admin, then run this again" >&2; exit 1; }',
    'failed=()',
  ];
  if (engines.has('postgres')) {
    lines.push(
      '',
      '# run_postgres NAME HOST HOSTADDR PORT USER CA_FILE: principals-postgres.sql as USER, in the postgres database',
      '# (notices such as "already exists, skipping" on a second run are not shown; warnings are).',
      'run_postgres() {',
      `  echo "== $1: ${PRINCIPAL_SQL_FILES.postgres} as $5"`,
      "  PGPASSWORD=$TOKEN PGSSLMODE=verify-full PGSSLROOTCERT=$6 PGHOSTADDR=$3 PGOPTIONS='-c client_min_messages=warning' \\",
      `    psql -X -q -v ON_ERROR_STOP=1 -h "$2" -p "$4" -U "$5" -d postgres -f "$here/${PRINCIPAL_SQL_FILES.postgres}" || failed+=("$1")`,
      '}',
    );
  }
  if (engines.has('mysql')) {
    lines.push(
      '',
      '# run_mysql NAME HOST PORT USER CA_FILE: principals-mysql.sql as USER. With --force the GRANTs run',
      '# where CREATE AADUSER fails with ERROR 1396 (the user exists: a second run, or servers sharing one);',
      '# any other error fails the server.',
      'mysql_client=$(command -v mariadb || command -v mysql) || { echo "needs the mariadb client (Debian: mariadb-client)" >&2; exit 1; }',
      'run_mysql() {',
      `  echo "== $1: ${PRINCIPAL_SQL_FILES.mysql} as $4"`,
      '  local errors status line',
      `  errors=$(MYSQL_PWD=$TOKEN "$mysql_client" --host="$2" --port="$3" --user="$4" --ssl-ca="$5" --ssl-verify-server-cert --force < "$here/${PRINCIPAL_SQL_FILES.mysql}" 2>&1 >/dev/null)`,
      '  status=$?',
      '  while IFS= read -r line; do',
      "    case $line in 'ERROR 1396 '*) ;; ERROR*) status=1 ;; esac",
      '  done <<< "$errors"',
      '  if [ "$status" -ne 0 ]; then',
      "    printf '%s\\n' \"$errors\" >&2",
      '    failed+=("$1")',
      '  fi',
      '}',
    );
  }
  lines.push('');
  for (const s of options.servers) {
    const args =
      s.protocol === 'postgres'
        ? ['run_postgres', shellQuote(s.name), shellQuote(s.host), shellQuote(s.hostaddr), String(s.port), shellQuote(s.user), ca(s)]
        : ['run_mysql', shellQuote(s.name), shellQuote(s.host), String(s.port), shellQuote(s.user), ca(s)];
    lines.push(args.join(' '));
  }
  lines.push(
    '',
    'if [ ${#failed[@]} -gt 0 ]; then echo "failed on: ${failed[*]}" >&2; exit 1; fi',
    `echo ${shellQuote(`done: ${options.user} is ${options.level} on every server above`)}`,
  );
  return `${lines.join('\n')}\n`;
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
