/** Step 3's SQL per privilege level and engine, and the script that runs it: the pure builders. */
import { describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/azure/token-claims.js';
import type { DatabaseConfig } from '../../src/config/schema.js';
import { mysqlDatabaseScope, principalGrants } from '../../src/core/setup/principal-grants.js';
import { adminConnection, renderCommandsScript, renderPrincipalSql } from '../../src/core/setup/principal-script.js';

const claims: TokenClaims = { tenantId: 't', objectId: 'oid-1', appId: 'app-1', audience: undefined, expiresOn: undefined, identityType: 'app', upn: undefined };

describe('principalGrants', () => {
  it('PostgreSQL read-only: a re-runnable create in postgres, then CONNECT, USAGE, SELECT now and later in each database', () => {
    const sql = principalGrants('postgres', { dbUser: 'app', claims, level: 'read-only', databases: ['orders', 'sales'] });
    expect(sql.create).toBe("SELECT pgaadauth_create_principal_with_oid('app', 'oid-1', 'service', false, false) AS created WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'app');");
    expect(sql.createDatabase).toBe('postgres');
    expect(sql.grants.map((g) => g.database)).toEqual(['orders', 'sales']);
    expect(sql.grants[0]!.statements).toEqual([
      'GRANT CONNECT ON DATABASE "orders" TO "app";',
      'GRANT USAGE ON SCHEMA public TO "app";',
      'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "app";',
      'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO "app";',
      expect.stringContaining("NOT has_table_privilege('app', format('public.%I', t.tablename), p.privilege)"),
    ]);
    // A GRANT the admin may not give only warns: the check after them fails the run instead.
    expect(sql.grants[0]!.statements.at(-1)).toContain("unnest(ARRAY['SELECT'])");
    expect(sql.grants[0]!.statements.at(-1)).toContain('RAISE EXCEPTION USING MESSAGE = \'app did not get SELECT on every table of schema public in orders');
  });

  it('PostgreSQL read-write adds row changes and sequences; owner adds a schema of its own', () => {
    const rw = principalGrants('postgres', { dbUser: 'app', claims, level: 'read-write', databases: ['orders'] }).grants[0]!.statements;
    expect(rw).toContain('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "app";');
    expect(rw).toContain('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "app";');
    expect(rw).toContain('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "app";');
    expect(rw.join('\n')).not.toContain('SCHEMA "app"');
    expect(rw.at(-1)).toContain("unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'])");
    const owner = principalGrants('postgres', { dbUser: 'app', claims, level: 'owner', databases: ['orders'] }).grants[0]!.statements;
    expect(owner.slice(0, rw.length)).toEqual(rw);
    expect(owner.slice(rw.length)).toEqual(['GRANT "app" TO CURRENT_USER;', 'CREATE SCHEMA IF NOT EXISTS "app" AUTHORIZATION "app";', 'REVOKE "app" FROM CURRENT_USER;']);
  });

  it('MySQL: the same levels on db.* only, never *.*', () => {
    const grants = (level: 'read-only' | 'read-write' | 'owner') => principalGrants('mysql', { dbUser: 'app', claims, level, databases: ['shop', 'crm'] });
    expect(grants('read-only').create).toBe("CREATE AADUSER 'app' IDENTIFIED BY 'app-1';");
    expect(grants('read-only').grants).toEqual([{ database: '', statements: ["GRANT SELECT ON `shop`.* TO 'app'@'%';", "GRANT SELECT ON `crm`.* TO 'app'@'%';"] }]);
    expect(grants('read-write').grants[0]!.statements[0]).toBe("GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO 'app'@'%';");
    expect(grants('owner').grants[0]!.statements[0]).toBe("GRANT ALL PRIVILEGES ON `shop`.* TO 'app'@'%';");
    for (const level of ['read-only', 'read-write', 'owner'] as const) expect(JSON.stringify(grants(level))).not.toMatch(/\*\.\*|`%`/);
  });

  it('names nothing when no database is named, and quotes names', () => {
    expect(principalGrants('mysql', { dbUser: 'app', claims, level: 'owner', databases: [] }).grants).toEqual([]);
    expect(principalGrants('postgres', { dbUser: 'app', claims, level: 'owner', databases: [] }).grants).toEqual([]);
    // MySQL wildcards in a database-level GRANT are escaped: shop_db must not match shopXdb.
    expect(mysqlDatabaseScope('shop_db')).toBe('`shop\\_db`.*');
    expect(mysqlDatabaseScope('a%b`c')).toBe('`a\\%b``c`.*');
    const odd = principalGrants('postgres', { dbUser: 'o"brien', claims, level: 'read-only', databases: ['my db'] });
    expect(odd.grants[0]!.statements[0]).toBe('GRANT CONNECT ON DATABASE "my db" TO "o""brien";');
    expect(renderPrincipalSql(odd)).toContain("\\connect 'my db'");
  });

  it('a person is granted under the sign-in name the create statement uses', () => {
    const person = { ...claims, identityType: 'user', upn: 'ann@contoso.com' };
    const sql = principalGrants('mysql', { dbUser: 'ann', claims: person, level: 'read-only', databases: ['shop'] });
    expect(sql.create).toBe("CREATE AADUSER 'ann@contoso.com';");
    expect(sql.grants[0]!.statements).toEqual(["GRANT SELECT ON `shop`.* TO 'ann@contoso.com'@'%';"]);
  });
});

describe('the SQL files', () => {
  it('one per engine: psql connects to each database; the MySQL file has only MySQL', () => {
    const pg = renderPrincipalSql(principalGrants('postgres', { dbUser: 'app', claims, level: 'read-only', databases: ['orders'] }));
    expect(pg).toMatch(/^\\set ON_ERROR_STOP on$/m);
    expect(pg.indexOf('pgaadauth_create_principal_with_oid')).toBeLessThan(pg.indexOf('\\connect orders'));
    expect(pg).not.toContain('AADUSER');
    const my = renderPrincipalSql(principalGrants('mysql', { dbUser: 'app', claims, level: 'read-only', databases: [] }));
    expect(my).not.toMatch(/pgaadauth|\\connect|\\set/);
    expect(my).toContain('-- No MySQL database named: nothing is granted.');
  });
});

describe('principals-commands.sh', () => {
  const db = (over: Partial<DatabaseConfig>): DatabaseConfig =>
    ({ name: 'orders', protocol: 'postgres', uri: '', host: 'orders.postgres.database.azure.com', port: 5432, azure: { server_kind: 'flexible', server_name: 'orders' }, tls: { mode: 'verify-full' }, labels: {}, ...over }) as DatabaseConfig;

  it('reaches a server at an IP by its certificate name for psql; single servers log in as admin@server', () => {
    expect(adminConnection(db({ host: '10.0.0.4', tls: { mode: 'verify-full', server_name: 'orders.postgres.database.azure.com', ca_file: '/ca.pem' } }), 'admin@contoso.com')).toEqual({
      name: 'orders',
      protocol: 'postgres',
      host: 'orders.postgres.database.azure.com',
      hostaddr: '10.0.0.4',
      port: 5432,
      user: 'admin@contoso.com',
      caFile: '/ca.pem',
    });
    const single = adminConnection(db({ name: 'legacy', protocol: 'mysql', host: 'legacy.mysql.database.azure.com', port: 3306, azure: { server_kind: 'single', server_name: 'legacy' } }), 'admin');
    expect(single).toMatchObject({ host: 'legacy.mysql.database.azure.com', hostaddr: '', user: 'admin@legacy', caFile: undefined });
  });

  it('fetches the token into a variable, passes it in the environment, verifies TLS, and only sets up the engines in use', () => {
    const script = renderCommandsScript({
      user: 'app',
      level: 'read-only',
      admin: 'admin',
      servers: [adminConnection(db({}), 'admin'), adminConnection(db({ name: "it's", protocol: 'mysql', host: 'shop.mysql.database.azure.com', port: 3306, tls: { mode: 'verify-full', ca_file: '/my ca.pem' } }), 'admin')],
    });
    expect(script.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(script).toContain('TOKEN=$(az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv)');
    expect(script).toContain('PGPASSWORD=$TOKEN PGSSLMODE=verify-full PGSSLROOTCERT=$6');
    expect(script).toContain('MYSQL_PWD=$TOKEN "$mysql_client"');
    expect(script).toContain('--ssl-verify-server-cert');
    expect(script).not.toMatch(/--password|-p\s*"?\$TOKEN|--enable-cleartext-plugin|sslmode=require/);
    expect(script).toContain('run_postgres orders orders.postgres.database.azure.com \'\' 5432 admin "$AZURE_CA_FILE"');
    expect(script).toContain("run_mysql 'it'\\''s' shop.mysql.database.azure.com 3306 admin '/my ca.pem'");
    const pgOnly = renderCommandsScript({ user: 'app', level: 'owner', admin: 'admin', servers: [adminConnection(db({}), 'admin')] });
    expect(pgOnly).not.toMatch(/run_mysql|mysql_client/);
  });
});
