/** Step 3's `x`, the logic only: which admin token opens the session, and what counts as done. */
import { describe, expect, it } from 'vitest';
import { AdminLoginFailed, applyPrincipalSql, openAdminSession } from '../../src/core/setup/admin-sql.js';
import type { PrincipalSql } from '../../src/core/setup/principal-grants.js';
import type { DbSession } from '../../src/diagnostics/db-client.js';

function session(run: (sql: string) => void = () => {}): DbSession & { ran: string[] } {
  const ran: string[] = [];
  return {
    protocol: 'mysql',
    user: 'admin',
    database: '',
    ran,
    query: async (sql) => {
      run(sql);
      ran.push(sql);
      return { rows: [] };
    },
    close: async () => {},
  };
}

const refused = (message: string, fields: Record<string, unknown>) => Object.assign(new Error(message), fields);

describe('openAdminSession', () => {
  it('uses the first source whose token the server takes, and says which', async () => {
    const opened = session();
    const tried: string[] = [];
    const result = await openAdminSession(
      [
        { name: 'Azure CLI', getToken: async () => 'cli-token' },
        { name: 'DefaultAzureCredential', getToken: async () => 'mi-token' },
      ],
      async (getToken) => {
        const token = await getToken();
        tried.push(token);
        if (token === 'cli-token') throw refused("Access denied for user 'admin'", { errno: 1045 });
        return opened;
      },
    );
    expect(tried).toEqual(['cli-token', 'mi-token']);
    expect(result).toEqual({ session: opened, source: 'DefaultAzureCredential' });
  });

  it('names every source and its failure when none works', async () => {
    const error = await openAdminSession(
      [
        { name: 'Azure CLI', getToken: async () => Promise.reject(new Error('Please run az login')) },
        { name: 'DefaultAzureCredential', getToken: async () => 'eyJsecret.token' },
      ],
      async (getToken) => {
        await getToken();
        throw refused('password authentication failed for user "admin"', { code: '28P01' });
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AdminLoginFailed);
    expect((error as Error).message).toBe('the Azure CLI token was refused: Please run az login; the DefaultAzureCredential token was refused: password authentication failed for user "admin"');
  });
});

describe('applyPrincipalSql', () => {
  const pgPlan: PrincipalSql = {
    protocol: 'postgres',
    user: 'app',
    level: 'read-only',
    databases: ['orders', 'postgres'],
    create: 'SELECT create ...',
    createDatabase: 'postgres',
    grants: [
      { database: 'orders', statements: ['GRANT a', 'GRANT b'] },
      { database: 'postgres', statements: ['GRANT c'] },
    ],
  };
  const mysqlPlan: PrincipalSql = { ...pgPlan, protocol: 'mysql', createDatabase: '', create: 'CREATE AADUSER ...', grants: [{ database: '', statements: ['GRANT x', 'GRANT y'] }] };

  /** Sessions by database, each remembering what ran and whether it was closed. */
  function opener(protocol: 'postgres' | 'mysql', run: (sql: string) => Array<Record<string, unknown>> = () => [{ created: 'yes' }]) {
    const opened: Array<{ database: string; ran: string[]; closed: boolean }> = [];
    const open = async (database: string): Promise<DbSession> => {
      const record = { database, ran: [] as string[], closed: false };
      opened.push(record);
      return {
        protocol,
        user: 'admin',
        database,
        query: async (sql) => {
          const rows = run(sql);
          record.ran.push(sql);
          return { rows };
        },
        close: async () => void (record.closed = true),
      };
    };
    return { open, opened };
  }

  it('creates in the postgres database, then grants in a session on each database, closing every session', async () => {
    const { open, opened } = opener('postgres');
    expect(await applyPrincipalSql(pgPlan, open)).toEqual({ existed: false, statements: 4 });
    // The group for postgres reuses the session the create ran in.
    expect(opened).toEqual([
      { database: 'postgres', ran: ['SELECT create ...', 'GRANT c'], closed: true },
      { database: 'orders', ran: ['GRANT a', 'GRANT b'], closed: true },
    ]);
  });

  it('runs the GRANTs where the principal exists: no row from the guarded create, 42710, or MySQL 1396', async () => {
    const none = opener('postgres', () => []);
    expect(await applyPrincipalSql(pgPlan, none.open)).toEqual({ existed: true, statements: 4 });
    const pgExists = opener('postgres', (sql) => {
      if (sql.startsWith('SELECT create')) throw refused('role "app" already exists', { code: '42710' });
      return [];
    });
    expect((await applyPrincipalSql(pgPlan, pgExists.open)).existed).toBe(true);
    const myExists = opener('mysql', (sql) => {
      if (sql.startsWith('CREATE')) throw refused("Operation CREATE USER failed for 'app'@'%'", { errno: 1396 });
      return [];
    });
    expect(await applyPrincipalSql(mysqlPlan, myExists.open)).toEqual({ existed: true, statements: 3 });
    // MySQL's GRANTs run in the one session.
    expect(myExists.opened).toEqual([{ database: '', ran: ['GRANT x', 'GRANT y'], closed: true }]);
  });

  it('stops at any other error, closing what it opened', async () => {
    const denied = opener('mysql', (sql) => {
      if (sql.startsWith('CREATE')) throw refused('Access denied; you need the CREATE USER privilege', { errno: 1227 });
      return [];
    });
    await expect(applyPrincipalSql(mysqlPlan, denied.open)).rejects.toThrow('CREATE USER privilege');
    expect(denied.opened).toEqual([{ database: '', ran: [], closed: true }]);
    const grantFails = opener('postgres', (sql) => {
      if (sql === 'GRANT b') throw refused('permission denied for schema public', { code: '42501' });
      return [{ created: 'yes' }];
    });
    await expect(applyPrincipalSql(pgPlan, grantFails.open)).rejects.toThrow('permission denied for schema public');
    expect(grantFails.opened.map((o) => [o.database, o.ran, o.closed])).toEqual([
      ['postgres', ['SELECT create ...'], true],
      ['orders', ['GRANT a'], true],
    ]);
  });
});
