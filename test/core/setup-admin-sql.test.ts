/** Step 3's `x`, the logic only: which admin token opens the session, and what counts as done. */
import { describe, expect, it } from 'vitest';
import { AdminLoginFailed, openAdminSession, runPrincipalStatements } from '../../src/core/setup/admin-sql.js';
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

describe('runPrincipalStatements', () => {
  it('runs the GRANT after a create refused because the principal exists (MySQL 1396, PostgreSQL 42710)', async () => {
    for (const exists of [{ errno: 1396 }, { code: '42710' }]) {
      const s = session((sql) => {
        if (sql.startsWith('CREATE')) throw refused('exists', exists);
      });
      expect(await runPrincipalStatements(s, ['CREATE AADUSER ...', 'GRANT ...'])).toEqual({ existed: true });
      expect(s.ran).toEqual(['GRANT ...']);
    }
  });

  it('fails on any other error, and on "exists" from a statement after the create', async () => {
    const denied = session((sql) => {
      if (sql.startsWith('CREATE')) throw refused('Access denied; you need the CREATE USER privilege', { errno: 1227 });
    });
    await expect(runPrincipalStatements(denied, ['CREATE AADUSER ...', 'GRANT ...'])).rejects.toThrow('CREATE USER privilege');
    expect(denied.ran).toEqual([]);
    const late = session((sql) => {
      if (sql.startsWith('GRANT')) throw refused('exists', { errno: 1396 });
    });
    await expect(runPrincipalStatements(late, ['CREATE AADUSER ...', 'GRANT ...'])).rejects.toThrow('exists');
    const fresh = session();
    expect(await runPrincipalStatements(fresh, ['CREATE AADUSER ...', 'GRANT ...'])).toEqual({ existed: false });
    expect(fresh.ran).toEqual(['CREATE AADUSER ...', 'GRANT ...']);
  });
});
