/**
 * What a psql or mariadb that azdb starts inherits: a working terminal program's environment and
 * the tunnel password, never azdb's own credentials or settings that would send it elsewhere.
 */
import { describe, expect, it } from 'vitest';
import { clientEnvironment } from '../../src/core/client-env.js';

const parent: NodeJS.ProcessEnv = {
  PATH: '/usr/bin',
  HOME: '/home/alice',
  TERM: 'xterm-256color',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  PAGER: 'less',
  EDITOR: 'vim',
  PSQL_HISTORY: '/home/alice/.psql_history',
  PGTZ: 'UTC',
  MYSQL_PS1: 'shop> ',
  AZURE_CLIENT_SECRET: 'sp-secret',
  AZURE_CLIENT_ID: 'app',
  AZURE_FEDERATED_TOKEN_FILE: '/var/run/token',
  IDENTITY_ENDPOINT: 'http://127.0.0.1:1/msi',
  IDENTITY_HEADER: 'msi-header',
  MSI_SECRET: 'msi-secret',
  GITHUB_TOKEN: 'ghp_x',
  AWS_SECRET_ACCESS_KEY: 'aws',
  PGPASSWORD: 'someone-elses',
  PGHOSTADDR: '10.0.0.5',
  PGSERVICE: 'prod',
  MYSQL_HOST: 'prod.example',
  AZDB_CONFIG: '/etc/azdb.yaml',
};

describe('clientEnvironment', () => {
  it('gives psql its terminal, pager, editor and display settings, and the tunnel password', () => {
    expect(clientEnvironment(parent, 'postgres', { PGPASSWORD: 'tunnel', PGSSLMODE: 'disable' })).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/alice',
      TERM: 'xterm-256color',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      PAGER: 'less',
      EDITOR: 'vim',
      PSQL_HISTORY: '/home/alice/.psql_history',
      PGTZ: 'UTC',
      PGPASSWORD: 'tunnel',
      PGSSLMODE: 'disable',
    });
  });

  it('gives mariadb / mysql the same, with its own display settings', () => {
    const env = clientEnvironment(parent, 'mysql', { MYSQL_PWD: 'tunnel' });
    expect(env).toMatchObject({ PATH: '/usr/bin', MYSQL_PS1: 'shop> ', MYSQL_PWD: 'tunnel' });
    expect(env).not.toHaveProperty('PSQL_HISTORY');
    expect(env).not.toHaveProperty('MYSQL_HOST');
  });

  it('never passes on a credential of azdb or another tool', () => {
    for (const protocol of ['postgres', 'mysql'] as const) {
      const values = Object.values(clientEnvironment(parent, protocol, {}));
      for (const secret of ['sp-secret', 'msi-header', 'msi-secret', 'ghp_x', 'aws', 'someone-elses', '/var/run/token']) expect(values).not.toContain(secret);
    }
  });
});
