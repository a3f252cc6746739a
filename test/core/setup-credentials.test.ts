/** Setup step 1 writes exports.sh (a placeholder for the secret) only on the service-principal path. */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialUnavailableError, type TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredsDeps, SourceName } from '../../src/azure/credential-sources.js';
import type { TokenCache } from '../../src/azure/token-cache.js';
import type { SetupContext } from '../../src/core/setup/context.js';
import { checkCredentials } from '../../src/core/setup/steps/credentials.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-setup-creds-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TOKEN = ['{"alg":"RS256"}', '{"aud":"https://ossrdbms-aad.database.windows.net","tid":"t","oid":"o","appid":"a","exp":2000000000}', 'sig']
  .map((part, i) => (i < 2 ? Buffer.from(part).toString('base64url') : part))
  .join('.');

function context(name: string, working: SourceName | undefined): SetupContext {
  const credsDeps: CredsDeps = {
    timeoutMs: 2_000,
    createSource(source): TokenCredential {
      return {
        getToken: async () => {
          if (source === working) return { token: TOKEN, expiresOnTimestamp: 2_000_000_000_000 };
          throw new CredentialUnavailableError(`${source} is unavailable. not set up`);
        },
      };
    },
  };
  return {
    env: {},
    configFile: join(dir, name, 'azdb.yaml'),
    artifactDir: join(dir, name, 'setup'),
    basis: { cloud: 'AzureCloud', knownDatabases: [] },
    tokens: {} as TokenCache,
    scope: 'https://ossrdbms-aad.database.windows.net/.default',
    credsDeps,
    adminTokenSources: async () => [],
    found: {},
  };
}

describe('setup step 1', () => {
  it('writes no exports.sh when a managed identity works', async () => {
    const sc = context('mi', 'ManagedIdentityCredential');
    const report = await checkCredentials(sc, new AbortController().signal);
    expect(report.status).toBe('pass');
    expect(report.artifacts).toEqual([]);
    expect(report.lines.join('\n')).not.toContain('export AZURE_CLIENT_SECRET');
    expect(await readdir(sc.artifactDir).catch(() => [])).not.toContain('exports.sh');
  });

  it('writes exports.sh (0600, a placeholder for the secret) when no source works', async () => {
    const sc = context('none', undefined);
    const report = await checkCredentials(sc, new AbortController().signal);
    expect(report.status).toBe('fail');
    expect(report.artifacts).toEqual([{ label: 'exports', path: join(sc.artifactDir, 'exports.sh') }]);
    expect((await stat(join(sc.artifactDir, 'exports.sh'))).mode & 0o777).toBe(0o600);
    expect(report.hint).toContain(join(sc.artifactDir, 'exports.sh'));
  });
});
