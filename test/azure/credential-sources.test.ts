import { describe, expect, it } from 'vitest';
import { AuthenticationError, CredentialUnavailableError, DefaultAzureCredential, type AccessToken, type TokenCredential } from '@azure/identity';
import { probeCredentials, SOURCE_NAMES, UNPROBED_SOURCES, type CredsDeps, type SourceName } from '../../src/azure/credential-sources.js';
import { credsJson } from '../../src/cli/commands/creds.js';
import { sourceAdvice } from '../../src/diagnostics/credential-advice.js';

const JWT_PATTERN = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;

function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJl`;
}

const TOKEN = jwt({ aud: 'https://ossrdbms-aad.database.windows.net', tid: 'tenant-1', oid: 'object-1', appid: 'app-1', exp: 2_000_000_000, idtyp: 'app' });

type Behaviour = 'token' | Error | 'hang';

function fakes(behaviours: Partial<Record<SourceName, Behaviour>>, timeoutMs = 200): CredsDeps & { scopes: string[] } {
  const scopes: string[] = [];
  return {
    scopes,
    timeoutMs,
    advise: sourceAdvice,
    createSource(name): TokenCredential {
      return {
        getToken: async (scope, options): Promise<AccessToken | null> => {
          scopes.push(Array.isArray(scope) ? scope.join(' ') : (scope as string));
          const behaviour = behaviours[name] ?? new CredentialUnavailableError(`${name} is unavailable. not set up`);
          if (behaviour === 'token') return { token: TOKEN, expiresOnTimestamp: 2_000_000_000_000 };
          if (behaviour === 'hang') {
            return new Promise((_, reject) => options?.abortSignal?.addEventListener('abort', () => reject(new Error('aborted'))));
          }
          throw behaviour;
        },
      };
    },
  };
}

const signal = new AbortController().signal;

describe('the probed sources', () => {
  // The probe copies DefaultAzureCredential's chain; an @azure/identity upgrade that changes the
  // chain must fail here, not drift silently.
  it('are DefaultAzureCredential\'s chain in the installed @azure/identity, in order', () => {
    const chain = (new DefaultAzureCredential() as unknown as { _sources: object[] })._sources.map((source) => {
      const name = source.constructor.name;
      // A source the SDK could not build stands in as UnavailableDefaultCredential, named after its factory.
      return name === 'UnavailableDefaultCredential' ? ((source as { credentialName?: string }).credentialName ?? name).replace(/^createDefault/, '') : name;
    });
    expect(chain.filter((name) => !UNPROBED_SOURCES.includes(name))).toEqual([...SOURCE_NAMES]);
    expect(chain).toHaveLength(SOURCE_NAMES.length + UNPROBED_SOURCES.length);
  });
});

describe('probeCredentials', () => {
  it('marks the sources after the one in use as not tried, not as failed', async () => {
    const deps = fakes({ ManagedIdentityCredential: 'token', AzureCliCredential: new CredentialUnavailableError("Please run 'az login' from a command prompt to authenticate before using this credential.") });
    const report = await probeCredentials({ cloud: 'AzureCloud', env: {} }, deps, signal);
    expect(report.used).toBe('ManagedIdentityCredential');
    const cli = report.sources.find((s) => s.name === 'AzureCliCredential')!;
    expect(cli).toMatchObject({ ok: false, notTried: true, detail: 'not tried: DefaultAzureCredential stops at ManagedIdentityCredential', hint: '' });
    // Before the one in use, a failure is still a failure.
    const env = report.sources.find((s) => s.name === 'EnvironmentCredential')!;
    expect(env.notTried).toBeUndefined();
  });

  it('probes every source in the chain order and uses the first that yields a token', async () => {
    const deps = fakes({ ManagedIdentityCredential: 'token', AzureCliCredential: 'token' });
    const seen: string[] = [];
    const report = await probeCredentials({ cloud: 'AzureCloud', env: {} }, deps, signal, (s) => seen.push(s.name));
    expect(seen).toEqual([...SOURCE_NAMES]);
    expect(report.used).toBe('ManagedIdentityCredential');
    expect(report.ok).toBe(true);
    expect(deps.scopes.every((s) => s === 'https://ossrdbms-aad.database.windows.net/.default')).toBe(true);
    const mi = report.sources.find((s) => s.name === 'ManagedIdentityCredential')!;
    expect(mi.detail).toContain('tenant tenant-1');
    expect(mi.detail).toContain('object id object-1');
    expect(mi.detail).toContain('app id app-1');
    expect(mi.detail).toContain('audience https://ossrdbms-aad.database.windows.net');
    expect(mi.detail).toContain('2033-05-18');
    expect(JSON.stringify(report)).not.toMatch(JWT_PATTERN);
  });

  it('asks for the sovereign cloud scope', async () => {
    const deps = fakes({ AzureCliCredential: 'token' });
    await probeCredentials({ cloud: 'AzureUSGovernment', env: {} }, deps, signal);
    expect(new Set(deps.scopes)).toEqual(new Set(['https://ossrdbms-aad.database.usgovcloudapi.net/.default']));
  });

  it('names the missing environment variables when the environment is not set up', async () => {
    const deps = fakes({ EnvironmentCredential: new CredentialUnavailableError('EnvironmentCredential is unavailable. No underlying credential could be used.') });
    const report = await probeCredentials({ cloud: 'AzureCloud', env: { AZURE_TENANT_ID: 't' } }, deps, signal);
    const env = report.sources[0]!;
    expect(env.ok).toBe(false);
    expect(env.detail).toContain('AZURE_CLIENT_ID');
    expect(env.detail).toContain('AZURE_CLIENT_SECRET');
    expect(env.detail).not.toContain('AZURE_TENANT_ID');
    expect(report.used).toBeNull();
    expect(report.summary).toBe('no credential source yields a token');
  });

  it('reports a wrong client secret as ending the chain, even though a later source works', async () => {
    const wrongSecret = new AuthenticationError(401, {
      error: 'invalid_client',
      error_description: 'AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.',
    });
    const deps = fakes({ EnvironmentCredential: wrongSecret, ManagedIdentityCredential: 'token' });
    const env = { AZURE_TENANT_ID: 't', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 'not-the-secret-value' };
    const report = await probeCredentials({ cloud: 'AzureCloud', env }, deps, signal);
    const source = report.sources[0]!;
    expect(source.stopsChain).toBe(true);
    expect(source.detail).toContain('AADSTS7000215');
    expect(source.hint).toContain('AZURE_CLIENT_SECRET is wrong or expired');
    expect(report.used).toBeNull();
    expect(report.summary).toContain('stops at EnvironmentCredential');
    expect(JSON.stringify(credsJson(report))).not.toContain('not-the-secret-value');
  });

  it('quotes the AADSTS sentence of MSAL\'s wrapping, without the trace trailer', async () => {
    // The errorDescription EnvironmentCredential carries for Entra's 401 (as seen against the emulated authority).
    const wrapped = new AuthenticationError(400, {
      error: 'EnvironmentCredential authentication failed. To troubleshoot, visit https://aka.ms/azsdk/js/identity/environmentcredential/troubleshoot.',
      error_description:
        "invalid_client: Error(s): 7000215 - Timestamp: 2026-01-01 10:00:00Z - Description: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'c'. Trace ID: 1f0c Correlation ID: 2e1d Timestamp: 2026-01-01 10:00:00Z - Correlation ID: 2e1d - Trace ID: 1f0c",
    });
    const env = { AZURE_TENANT_ID: 't', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's' };
    const source = (await probeCredentials({ cloud: 'AzureCloud', env }, fakes({ EnvironmentCredential: wrapped }), signal)).sources[0]!;
    expect(source.detail).toBe(
      "the service principal's secret was refused: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'c'.",
    );
  });

  it('explains an authority host MSAL cannot resolve', async () => {
    const unresolved = new AuthenticationError(400, {
      error: 'EnvironmentCredential authentication failed. To troubleshoot, visit https://aka.ms/azsdk/js/identity/environmentcredential/troubleshoot.',
      error_description: 'endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error for details',
    });
    const env = { AZURE_TENANT_ID: 't', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's', AZURE_AUTHORITY_HOST: 'https://login.example.com' };
    const report = await probeCredentials({ cloud: 'AzureCloud', env }, fakes({ EnvironmentCredential: unresolved, ManagedIdentityCredential: 'token' }), signal);
    const source = report.sources[0]!;
    expect(source.detail).toContain('Entra ID does not accept AZURE_AUTHORITY_HOST=https://login.example.com as an authority');
    expect(source.detail).toContain('(endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error for details)');
    expect(source.hint).toContain("set AZURE_AUTHORITY_HOST to your cloud's Entra authority");
    expect(source.stopsChain).toBe(true);
    expect(report.used).toBeNull();
  });

  it('says an identity endpoint is unreachable or answered 500, with the endpoint', async () => {
    const env = { IDENTITY_ENDPOINT: 'http://127.0.0.1:1/msi/token/', IDENTITY_HEADER: 'h' };
    const unreachable = await probeCredentials({ cloud: 'AzureCloud', env }, fakes({ ManagedIdentityCredential: new CredentialUnavailableError('ManagedIdentityCredential: Network unreachable. Message: connect ECONNREFUSED 127.0.0.1:1') }), signal);
    expect(unreachable.sources[2]!.detail).toMatch(/identity endpoint http:\/\/127\.0\.0\.1:1\/msi\/token\/ is unreachable/);
    const failing = await probeCredentials(
      { cloud: 'AzureCloud', env },
      fakes({ ManagedIdentityCredential: new CredentialUnavailableError('ManagedIdentityCredential: Authentication failed. Message : An unexpected error occured while fetching the AAD Token.') }),
      signal,
    );
    expect(failing.sources[2]!.detail).toContain('answered with an error');
    expect(failing.sources[2]!.hint).toContain('HTTP 500');
  });

  it('gives a hanging source its time limit and goes on', async () => {
    const report = await probeCredentials({ cloud: 'AzureCloud', env: {} }, fakes({ AzureCliCredential: 'hang', AzureDeveloperCliCredential: 'token' }, 50), signal);
    expect(report.sources[3]!.detail).toBe('no answer within 0.1 s');
    expect(report.sources[3]!.ok).toBe(false);
    expect(report.used).toBe('AzureDeveloperCliCredential');
  });

  it('tells a missing Azure CLI from a logged-out one', async () => {
    const missing = await probeCredentials({ cloud: 'AzureCloud', env: {} }, fakes({ AzureCliCredential: new CredentialUnavailableError('Azure CLI could not be found. Please visit https://aka.ms/azure-cli') }), signal);
    expect(missing.sources[3]!.detail).toBe('the Azure CLI (az) is not installed');
    const loggedOut = await probeCredentials({ cloud: 'AzureCloud', env: {} }, fakes({ AzureCliCredential: new CredentialUnavailableError("Please run 'az login' from a command prompt to authenticate before using this credential.") }), signal);
    expect(loggedOut.sources[3]!.hint).toContain('az login');
  });

  it('leaves out what AZURE_TOKEN_CREDENTIALS excludes', async () => {
    const report = await probeCredentials({ cloud: 'AzureCloud', env: { AZURE_TOKEN_CREDENTIALS: 'dev' } }, fakes({ ManagedIdentityCredential: 'token', AzureCliCredential: 'token' }), signal);
    expect(report.sources[2]!.excluded).toBe(true);
    expect(report.used).toBe('AzureCliCredential');
  });

  it('serializes exactly the contract shape', async () => {
    const report = await probeCredentials({ cloud: 'AzureCloud', env: {} }, fakes({ ManagedIdentityCredential: 'token' }), signal);
    const doc = credsJson(report);
    expect(Object.keys(doc)).toEqual(['ok', 'used', 'sources']);
    for (const source of doc.sources) expect(Object.keys(source)).toEqual(['name', 'ok', 'detail', 'hint']); // hint: as doctor's checks
  });
});
