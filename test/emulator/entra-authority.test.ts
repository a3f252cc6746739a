// The emulated Entra authority's wire shapes, by raw HTTPS (what MSAL sends and reads); the real
// @azure/identity against it runs in test/cli/creds-env.e2e.test.ts (it needs HTTPS_PROXY and
// NODE_EXTRA_CA_CERTS at process start).
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateCa, type LocalCa } from '../../src/emulator/ca.js';
import { createTokenIssuer, type TokenIssuer } from '../../src/emulator/entra.js';
import { startEntraAuthority, type EntraAuthority } from '../../src/emulator/entra-authority.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = { clientId: '3c9e1a7b-2d4f-4e6a-8b0c-5f7d9e1a3b2c', objectId: '8e2f4a6c-1b3d-4f5e-9a7b-0c2d4e6f8a1b', displayName: 'app', secrets: ['right~secret'] };
const SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';
const HOST = 'login.microsoftonline.com';

let dir: string;
let ca: LocalCa;
let issuer: TokenIssuer;
let authority: EntraAuthority;

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** A request to the authority's HTTPS port, as to login.microsoftonline.com. */
async function call(method: string, path: string, form?: Record<string, string>, socket?: Socket): Promise<Reply> {
  const url = new URL(authority.directUrl);
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const request = httpsRequest({
    host: url.hostname,
    port: url.port,
    method,
    path,
    servername: HOST,
    ca: ca.caPem,
    headers: { host: HOST, ...(body ? { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8', 'client-request-id': 'corr-1' } : {}) },
    ...(socket ? { createConnection: () => tlsConnect({ socket, servername: HOST, ca: ca.caPem }) } : {}),
  });
  request.end(body);
  const [response] = (await once(request, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> };
}

function token(form: Record<string, string>, tenant = TENANT): Promise<Reply> {
  return call('POST', `/${tenant}/oauth2/v2.0/token`, { grant_type: 'client_credentials', ...form });
}

async function proxyConnect(target: string): Promise<{ status: number; socket: Socket }> {
  const proxy = new URL(authority.proxyUrl);
  const request = httpRequest({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: target });
  request.end();
  const [response, socket] = (await once(request, 'connect')) as [IncomingMessage, Socket];
  return { status: response.statusCode ?? 0, socket };
}

function expectEntraError(reply: Reply, status: number, error: string, code: number): string {
  expect(reply.status).toBe(status);
  expect(Object.keys(reply.body)).toEqual(['error', 'error_description', 'error_codes', 'timestamp', 'trace_id', 'correlation_id', 'error_uri']);
  expect(reply.body.error).toBe(error);
  expect(reply.body.error_codes).toEqual([code]);
  const description = String(reply.body.error_description);
  expect(description).toMatch(new RegExp(`^AADSTS${code}: .+ Trace ID: [0-9a-f-]{36} Correlation ID: \\S+ Timestamp: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`));
  return description;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-entra-authority-'));
  ca = await loadOrCreateCa(join(dir, 'ca'));
  issuer = await createTokenIssuer({ tenantId: TENANT });
  authority = await startEntraAuthority({ issuer, ca, apps: [APP], tenantDisplayName: 'Contoso' });
});

beforeEach(() => authority.resetLog());

afterAll(async () => {
  await authority?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('token endpoint (client credentials)', () => {
  it('issues a v1.0 app token for the resource of the /.default scope', async () => {
    const reply = await token({ client_id: APP.clientId, client_secret: 'right~secret', scope: SCOPE });
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body)).toEqual(['token_type', 'expires_in', 'ext_expires_in', 'access_token']);
    expect(reply.body).toMatchObject({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599 });
    const claims = await issuer.verify(String(reply.body.access_token), { audience: 'https://ossrdbms-aad.database.windows.net' });
    expect(claims).toMatchObject({ tid: TENANT, appid: APP.clientId, oid: APP.objectId, sub: APP.objectId, idtyp: 'app', ver: '1.0', iss: `https://sts.windows.net/${TENANT}/` });
    expect(claims.exp - claims.iat).toBe(3599);
    expect(authority.tokensIssued).toBeGreaterThanOrEqual(1);
    expect(authority.requests).toEqual([{ method: 'POST', host: HOST, path: `/${TENANT}/oauth2/v2.0/token`, status: 200 }]);
  });

  it('refuses a wrong secret with 401 invalid_client AADSTS7000215, echoing the correlation id', async () => {
    const reply = await token({ client_id: APP.clientId, client_secret: 'wrong', scope: SCOPE });
    const description = expectEntraError(reply, 401, 'invalid_client', 7000215);
    expect(description).toContain(`Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${APP.clientId}'.`);
    expect(reply.body.correlation_id).toBe('corr-1');
  });

  it('refuses an unknown client with 400 unauthorized_client AADSTS700016', async () => {
    const description = expectEntraError(await token({ client_id: 'nobody', client_secret: 'x', scope: SCOPE }), 400, 'unauthorized_client', 700016);
    expect(description).toContain("Application with identifier 'nobody' was not found in the directory 'Contoso'.");
  });

  it('refuses an unknown tenant, a scope without /.default, a missing secret and another grant', async () => {
    expectEntraError(await token({ client_id: APP.clientId, client_secret: 'right~secret', scope: SCOPE }, 'other-tenant'), 400, 'invalid_request', 90002);
    expectEntraError(await token({ client_id: APP.clientId, client_secret: 'right~secret', scope: 'https://ossrdbms-aad.database.windows.net/user_impersonation' }), 400, 'invalid_scope', 1002012);
    expectEntraError(await token({ client_id: APP.clientId, scope: SCOPE }), 401, 'invalid_client', 7000216);
    expectEntraError(await token({ client_id: APP.clientId, client_secret: 'right~secret', scope: SCOPE, grant_type: 'password' }), 400, 'unsupported_grant_type', 70003);
    expectEntraError(await token({ client_secret: 'right~secret', scope: SCOPE }), 400, 'invalid_request', 900144);
  });
});

describe('discovery', () => {
  it('publishes the OpenID configuration and the signing keys of the tenant', async () => {
    const config = await call('GET', `/${TENANT}/v2.0/.well-known/openid-configuration`);
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({
      token_endpoint: `https://${HOST}/${TENANT}/oauth2/v2.0/token`,
      authorization_endpoint: `https://${HOST}/${TENANT}/oauth2/v2.0/authorize`,
      issuer: `https://${HOST}/${TENANT}/v2.0`,
      jwks_uri: `https://${HOST}/${TENANT}/discovery/v2.0/keys`,
    });
    expect((await call('GET', `/${TENANT}/discovery/v2.0/keys`)).body).toEqual(issuer.jwks);
  });

  it('publishes the v1.0 configuration (the sts.windows.net issuer of oss-rdbms tokens) and the common keys, across a key rollover', async () => {
    const config = await call('GET', `/${TENANT}/.well-known/openid-configuration`);
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({ issuer: `https://sts.windows.net/${TENANT}/`, jwks_uri: `https://${HOST}/common/discovery/keys` });
    const before = (await call('GET', '/common/discovery/keys')).body as { keys: Array<{ kid: string }> };
    expect(before.keys.map((k) => k.kid)).toEqual(issuer.jwks.keys.map((k) => k.kid));
    expect(before.keys.every((k) => typeof k.kid === 'string' && k.kid.length > 0)).toBe(true);
    await issuer.rotateKeys();
    const after = (await call('GET', '/common/discovery/keys')).body as { keys: Array<{ kid: string }> };
    expect(after.keys).toHaveLength(2);
    expect(after.keys[1]!.kid).toBe(before.keys[0]!.kid);
    expect(after.keys[0]!.kid).not.toBe(before.keys[0]!.kid);
    expect((await call('GET', `/${TENANT}/discovery/keys`)).body).toEqual(issuer.jwks);
  });

  it('publishes the configuration and keys of other tenants, and names endpoints on the host asked', async () => {
    const other = await createTokenIssuer({ tenantId: '99999999-0000-4000-8000-0000000000ff' });
    const multi = await startEntraAuthority({ issuer, ca, apps: [APP], otherTenants: [other] });
    try {
      const url = new URL(multi.directUrl);
      const get = async (path: string) => {
        const request = httpsRequest({ host: url.hostname, port: url.port, path, ca: ca.caPem });
        request.end();
        const [response] = (await once(request, 'response')) as [IncomingMessage];
        const chunks: Buffer[] = [];
        for await (const chunk of response) chunks.push(chunk as Buffer);
        return { status: response.statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> };
      };
      const config = await get(`/${other.tenantId}/v2.0/.well-known/openid-configuration`);
      expect(config.body).toMatchObject({ issuer: `https://${HOST}/${other.tenantId}/v2.0`, jwks_uri: `${multi.directUrl}/${other.tenantId}/discovery/v2.0/keys` });
      expect((await get(`/${other.tenantId}/discovery/v2.0/keys`)).body).toEqual(other.jwks);
      const common = (await get('/common/discovery/keys')).body as { keys: unknown[] };
      expect(common.keys).toEqual([...issuer.jwks.keys, ...other.jwks.keys]);
      expect((await get('/00000000-dead-4000-8000-000000000000/.well-known/openid-configuration')).status).toBe(400);
    } finally {
      await multi.close();
    }
  });

  it('vouches for Microsoft hosts in instance discovery and answers invalid_instance for others', async () => {
    const known = await call('GET', `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`https://${HOST}/${TENANT}/oauth2/v2.0/authorize`)}`);
    expect(known.status).toBe(200);
    expect(known.body).toMatchObject({ tenant_discovery_endpoint: `https://${HOST}/${TENANT}/v2.0/.well-known/openid-configuration`, 'api-version': '1.1' });
    const unknown = await call('GET', `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`${authority.directUrl}/${TENANT}/oauth2/v2.0/authorize`)}`);
    expectEntraError(unknown, 400, 'invalid_instance', 50049);
  });
});

describe('the loopback proxy', () => {
  it('tunnels to the Entra host names and nowhere else', async () => {
    const entra = await proxyConnect(`${HOST}:443`);
    expect(entra.status).toBe(200);
    const reply = await call('GET', `/${TENANT}/v2.0/.well-known/openid-configuration`, undefined, entra.socket);
    expect(reply.status).toBe(200);
    entra.socket.destroy();

    const elsewhere = await proxyConnect('management.azure.com:443');
    expect(elsewhere.status).toBe(403);
    elsewhere.socket.destroy();
    expect(authority.refused).toEqual(['CONNECT management.azure.com:443']);
    expect(authority.env()).toEqual({ HTTPS_PROXY: authority.proxyUrl, NO_PROXY: '127.0.0.1,localhost' });
  });
});
