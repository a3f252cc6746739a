// The real @azure/identity against the emulated App Service managed identity endpoint.
// MSAL freezes the endpoint, header and HTTP client of the first managed identity request in a
// process (see the comment atop identity-endpoint.ts), so this file runs one endpoint for all its
// tests and makes that first request in beforeAll with retries off.
import { once } from 'node:events';
import { connect } from 'node:net';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenIssuer, type TokenIssuer } from '../../src/emulator/entra.js';
import { startIdentityEndpoint, type IdentityEndpoint } from '../../src/emulator/identity-endpoint.js';
import { waitFor } from '../helpers/wait.js';

const DB_RESOURCE = 'https://ossrdbms-aad.database.windows.net';
const DB_SCOPE = `${DB_RESOURCE}/.default`;
const SYSTEM = { clientId: '0b6c3a5e-7f1d-4c2a-9e8b-1d2c3b4a5f60', objectId: '5d1e0f7a-3b2c-4d8e-9f10-a1b2c3d4e5f6' };
const USER = {
  clientId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  objectId: 'f0e1d2c3-b4a5-4968-8776-655443322110',
  resourceId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/azdb',
};
/** Variables that would send @azure/identity elsewhere than App Service managed identity. */
const INTERFERING_ENV = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_TOKEN_CREDENTIALS',
  'AZURE_POD_IDENTITY_AUTHORITY_HOST',
  'IDENTITY_SERVER_THUMBPRINT',
  'IDENTITY_ENDPOINT',
  'IDENTITY_HEADER',
  'MSI_ENDPOINT',
  'MSI_SECRET',
  'IMDS_ENDPOINT',
];

let issuer: TokenIssuer;
let identity: IdentityEndpoint;
const savedEnv = new Map<string, string | undefined>();

beforeAll(async () => {
  issuer = await createTokenIssuer({ tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47' });
  identity = await startIdentityEndpoint({
    issuer,
    identities: [{ ...SYSTEM, default: true }, USER],
    tokenTtlSeconds: 3600,
  });
  for (const name of INTERFERING_ENV) {
    savedEnv.set(name, process.env[name]);
    delete process.env[name];
  }
  Object.assign(process.env, identity.env());
  // The first request of the process fixes MSAL's HTTP client: make it one without retries.
  await new ManagedIdentityCredential({ retryOptions: { maxRetries: 0 } }).getToken('https://warm-up.example/.default');
});

afterAll(async () => {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await identity?.close();
});

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function rawRequest(query: string, header: string | undefined): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${identity.endpoint}?${query}`, {
    headers: header === undefined ? {} : { 'X-IDENTITY-HEADER': header },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('App Service managed identity endpoint', () => {
  it('serves @azure/identity ManagedIdentityCredential over http://127.0.0.1', async () => {
    expect(identity.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/msi\/token\/$/);
    const before = identity.requests;
    const token = await new ManagedIdentityCredential().getToken(DB_SCOPE);
    expect(identity.requests).toBe(before + 1);

    const claims = await issuer.verify(token.token, { audience: DB_RESOURCE });
    expect(claims).toMatchObject({ aud: DB_RESOURCE, oid: SYSTEM.objectId, appid: SYSTEM.clientId, idtyp: 'app' });
    expect(Math.abs(token.expiresOnTimestamp - claims.exp * 1000)).toBeLessThanOrEqual(2000);
    expect(Math.abs(token.expiresOnTimestamp - (Date.now() + 3600_000))).toBeLessThan(5000);
  });

  it('answers in the App Service 2019-08-01 shape', async () => {
    const { status, body } = await rawRequest(`api-version=2019-08-01&resource=${encodeURIComponent(DB_RESOURCE)}`, identity.header);
    expect(status).toBe(200);
    expect(body).toEqual({
      access_token: expect.any(String),
      expires_on: expect.stringMatching(/^\d+$/),
      resource: DB_RESOURCE,
      token_type: 'Bearer',
      client_id: SYSTEM.clientId,
    });
    expect(claimsOf(body.access_token as string).exp).toBe(Number(body.expires_on));
  });

  it('strips /.default from the resource for the audience', async () => {
    const { body } = await rawRequest(`api-version=2019-08-01&resource=${encodeURIComponent(DB_SCOPE)}`, identity.header);
    expect(claimsOf(body.access_token as string).aud).toBe(DB_RESOURCE);
  });

  it('shares MSAL’s per-process cache between credential instances for tokens of an hour', async () => {
    const scope = 'https://shared-cache.example/.default';
    await new ManagedIdentityCredential().getToken(scope);
    const after = identity.requests;
    await new ManagedIdentityCredential().getToken(scope);
    await new ManagedIdentityCredential().getToken(scope);
    expect(identity.requests).toBe(after);
  });

  it('is asked again on every call when tokens live less than MSAL’s 5-minute renewal offset', async () => {
    identity.setTokenTtl(120);
    try {
      const credential = new ManagedIdentityCredential();
      const before = identity.requests;
      const first = await credential.getToken('https://short-lived.example/.default');
      await credential.getToken('https://short-lived.example/.default');
      await credential.getToken('https://short-lived.example/.default');
      expect(identity.requests).toBe(before + 3);
      expect(Math.abs(first.expiresOnTimestamp - (Date.now() + 120_000))).toBeLessThan(5000);
    } finally {
      identity.setTokenTtl(3600);
    }
  });

  it('issues tokens for a user-assigned identity by client id, object id or resource id', async () => {
    const byClientId = await new ManagedIdentityCredential({ clientId: USER.clientId }).getToken(DB_SCOPE);
    expect(claimsOf(byClientId.token)).toMatchObject({ oid: USER.objectId, appid: USER.clientId });
    const byObjectId = await new ManagedIdentityCredential({ objectId: USER.objectId }).getToken('https://by-oid.example/.default');
    expect(claimsOf(byObjectId.token)).toMatchObject({ oid: USER.objectId });
    const byResourceId = await new ManagedIdentityCredential({ resourceId: USER.resourceId }).getToken(
      'https://by-res.example/.default',
    );
    expect(claimsOf(byResourceId.token)).toMatchObject({ oid: USER.objectId });
  });

  it('serves DefaultAzureCredential', async () => {
    const token = await new DefaultAzureCredential().getToken('https://management.azure.com/.default');
    const claims = await issuer.verify(token.token, { audience: 'https://management.azure.com' });
    expect(claims.oid).toBe(SYSTEM.objectId);
  });

  it('refuses an identity that is not assigned with App Service’s 400', async () => {
    const { status, body } = await rawRequest(
      `api-version=2019-08-01&resource=${encodeURIComponent(DB_RESOURCE)}&client_id=00000000-0000-0000-0000-000000000000`,
      identity.header,
    );
    expect(status).toBe(400);
    expect(body).toEqual({ statusCode: 400, message: 'Unable to load the proper Managed Identity.', correlationId: expect.any(String) });
    await expect(
      new ManagedIdentityCredential({ clientId: '00000000-0000-0000-0000-000000000000' }).getToken(DB_SCOPE),
    ).rejects.toThrow(/Unable to load the proper Managed Identity/);
  });

  it('refuses a missing or wrong X-IDENTITY-HEADER with 401', async () => {
    const query = `api-version=2019-08-01&resource=${encodeURIComponent(DB_RESOURCE)}`;
    expect((await rawRequest(query, undefined)).status).toBe(401);
    const wrong = await rawRequest(query, 'not-the-secret');
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ statusCode: 401 });
  });

  it('refuses other api-versions and a missing resource with 400', async () => {
    expect((await rawRequest(`api-version=2017-09-01&resource=${encodeURIComponent(DB_RESOURCE)}`, identity.header)).status).toBe(400);
    expect((await rawRequest('api-version=2019-08-01', identity.header)).status).toBe(400);
  });

  it('answers 500 in error-500 mode, and the credential fails', async () => {
    await identity.setMode('error-500');
    try {
      const { status, body } = await rawRequest(`api-version=2019-08-01&resource=${encodeURIComponent(DB_RESOURCE)}`, identity.header);
      expect(status).toBe(500);
      expect(body).toMatchObject({ statusCode: 500, message: expect.any(String) });
      const before = identity.requests;
      await expect(new ManagedIdentityCredential().getToken('https://error-500.example/.default')).rejects.toMatchObject({
        name: 'CredentialUnavailableError',
      });
      expect(identity.requests).toBe(before + 1); // no retries: the first credential had none
    } finally {
      await identity.setMode('up');
    }
  });

  it('refuses connections in unreachable mode and comes back on the same port', async () => {
    const { port } = new URL(identity.endpoint);
    await identity.setMode('unreachable');
    const socket = connect(Number(port), '127.0.0.1');
    await expect(once(socket, 'connect')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(new ManagedIdentityCredential().getToken('https://unreachable.example/.default')).rejects.toThrow(
      /Network unreachable/,
    );

    await identity.setMode('up');
    const token = await new ManagedIdentityCredential().getToken('https://unreachable.example/.default');
    expect(claimsOf(token.token).aud).toBe('https://unreachable.example');
  });

  it('takes requests and never answers them in hang mode; they stay unanswered after it recovers, until the client gives up', async () => {
    await identity.setMode('hang');
    const query = `${identity.endpoint}?api-version=2019-08-01&resource=${encodeURIComponent(DB_RESOURCE)}`;
    const giveUp = new AbortController();
    const stuck = fetch(query, { headers: { 'X-IDENTITY-HEADER': identity.header }, signal: giveUp.signal });
    const outcome = stuck.then(() => 'answered', (e: Error) => e.name);
    await waitFor(() => identity.held === 1, 'the request to be held');
    await identity.setMode('up');
    const fresh = await rawRequest(`api-version=2019-08-01&resource=${encodeURIComponent(DB_RESOURCE)}`, identity.header);
    expect(fresh.status).toBe(200);
    expect(identity.held).toBe(1); // the old request is still without an answer
    giveUp.abort();
    expect(await outcome).toBe('AbortError');
    await waitFor(() => identity.held === 0, 'the held request to go');
  });

  it('closes promptly with a kept-alive connection open', async () => {
    const other = await startIdentityEndpoint({ issuer, identities: [{ ...SYSTEM, default: true }] });
    const { port } = new URL(other.endpoint);
    const response = await fetch(`${other.endpoint}?api-version=2019-08-01&resource=x`, {
      headers: { 'X-IDENTITY-HEADER': other.header, Connection: 'keep-alive' },
    });
    expect(response.status).toBe(200);
    await response.json();
    await other.close();
    const socket = connect(Number(port), '127.0.0.1');
    await expect(once(socket, 'connect')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(other.tokensIssued).toBe(1);
  });
});
