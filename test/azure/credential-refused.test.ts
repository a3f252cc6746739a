// The real DefaultAzureCredential (createCredential) and token cache against an App Service
// identity endpoint whose port refuses connections: the demo stopped with its environment kept.
// MSAL freezes the identity endpoint and HTTP client of the first managed identity request of a
// process, so this file (its own process) makes that request through azdb's credential only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUDS, databaseScope } from '../../src/azure/clouds.js';
import { createCredential } from '../../src/azure/credential.js';
import { TokenCache } from '../../src/azure/token-cache.js';
import { ExternalError } from '../../src/errors.js';
import { freePort } from '../helpers/ports.js';

const SCOPE = databaseScope(CLOUDS.AzureCloud);
/** Variables that would send DefaultAzureCredential elsewhere than the App Service managed identity. */
const INTERFERING_ENV = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_USERNAME',
  'AZURE_PASSWORD',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_TOKEN_CREDENTIALS',
  'AZURE_AUTHORITY_HOST',
  'IDENTITY_SERVER_THUMBPRINT',
  'MSI_ENDPOINT',
  'MSI_SECRET',
  'IMDS_ENDPOINT',
];

const savedEnv = new Map<string, string | undefined>();
let port: number;

beforeAll(async () => {
  port = await freePort(); // nothing listens there: connections are refused
  for (const name of [...INTERFERING_ENV, 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER']) {
    savedEnv.set(name, process.env[name]);
    delete process.env[name];
  }
  process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${port}/msi/token/`;
  process.env.IDENTITY_HEADER = 'a-header-of-a-demo-that-is-gone';
});

afterAll(() => {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('a refused identity endpoint', () => {
  it('fails within a few seconds, saying the connection was refused at its address (not "Network unreachable")', async () => {
    const cache = new TokenCache({ credential: createCredential() });
    const started = Date.now();
    const error = (await cache.getToken(SCOPE).catch((e: unknown) => e)) as ExternalError;
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(ExternalError);
    expect(error.message).toContain(
      `ManagedIdentityCredential failed: ManagedIdentityCredential: the identity endpoint http://127.0.0.1:${port}/msi/token/ refused the connection (connect ECONNREFUSED 127.0.0.1:${port})`,
    );
    expect(error.message).not.toMatch(/Network unreachable|network_error/);
    expect(cache.status(SCOPE)).toMatchObject({ state: 'failing' });
    // DefaultAzureCredential's own retries of a managed identity take about 19 s here.
    expect(elapsed).toBeLessThan(8_000);
  });
});
