/**
 * The Microsoft Entra ID authority (`login.microsoftonline.com`) as an unmodified
 * `@azure/identity` `ClientSecretCredential` (so `EnvironmentCredential` and
 * `DefaultAzureCredential` with `AZURE_TENANT_ID` / `AZURE_CLIENT_ID` / `AZURE_CLIENT_SECRET`)
 * talks to it: client-credentials tokens for registered apps, issued by the emulator's
 * {@link TokenIssuer}, with Entra's response shapes and refusals.
 *
 * How it is reached, and why that way (@azure/identity 4.13.1, @azure/msal-node 5.6 with
 * @azure/msal-common 16.13):
 * - For `https://login.microsoftonline.com` MSAL needs no discovery request at all: both the cloud
 *   discovery metadata and the OAuth endpoints are hard-coded (msal-common
 *   `authority/AuthorityMetadata.mjs`, used by `Authority.updateCloudDiscoveryMetadataFromLocalSources`
 *   and `updateEndpointMetadataFromLocalSources`), so a token costs exactly one
 *   `POST /{tenant}/oauth2/v2.0/token`.
 * - Any other authority host (`AZURE_AUTHORITY_HOST=https://127.0.0.1:…`) is validated first with
 *   `GET https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=…`
 *   (`Authority.getCloudDiscoveryMetadataFromNetwork`): @azure/identity lists the authority in
 *   MSAL's `knownAuthorities` only for the tenant `adfs` or with the `disableInstanceDiscovery`
 *   constructor option (`getKnownAuthorities` in `msal/utils.js`), and no environment variable
 *   sets that option. Entra answers that request for a host it does not know with
 *   `400 invalid_instance` (AADSTS50049), which MSAL turns into `untrusted_authority`; so does this
 *   emulator. A custom authority host can therefore not stand in for Entra without a change to how
 *   azdb builds DefaultAzureCredential.
 * - So the emulator serves the real host name, over HTTPS with a certificate from the local CA,
 *   behind a loopback HTTP CONNECT proxy: the client process gets `HTTPS_PROXY` (honoured by
 *   every Azure SDK pipeline, @typespec/ts-http-runtime `proxyPolicy`), `NO_PROXY=127.0.0.1,localhost`
 *   (so the other emulated endpoints are reached directly) and `NODE_EXTRA_CA_CERTS` = the CA file.
 *   The proxy tunnels only to the Entra host names below and refuses (403) and records every
 *   other target, so nothing ever leaves 127.0.0.1 and a stray request is visible, not silent.
 *
 * Endpoints (tenant = the issuer's tenant id; any other tenant → AADSTS90002):
 *   POST /{tenant}/oauth2/v2.0/token   client_credentials with client_secret, scope `<resource>/.default`
 *        → 200 `{ token_type: "Bearer", expires_in, ext_expires_in, access_token }`, a v1.0 token with
 *          aud = resource, appid = client id, oid/sub = the app's service principal, idtyp "app"
 *        → 401 invalid_client AADSTS7000215 (wrong secret), 400 unauthorized_client AADSTS700016
 *          (unknown client id), 400 invalid_request AADSTS90002 (unknown tenant), 400 invalid_scope
 *          AADSTS1002012 (scope without /.default), 400 invalid_request AADSTS900144 (missing
 *          parameter), 401 invalid_client AADSTS7000216 (no secret), 400 unsupported_grant_type
 *          AADSTS70003.
 *   GET  /{tenant}/v2.0/.well-known/openid-configuration (issuer `https://login.microsoftonline.com/{tenant}/v2.0`),
 *   GET  /{tenant}/.well-known/openid-configuration (v1.0: issuer `https://sts.windows.net/{tenant}/`, the
 *        `iss` of the v1.0 access tokens Entra issues for oss-rdbms; jwks_uri `…/common/discovery/keys`),
 *   GET  /{tenant}/discovery/v2.0/keys, /{tenant}/discovery/keys, /common/discovery/keys and
 *        /common/discovery/v2.0/keys (the signing keys, each with its `kid`; `common` lists every
 *        tenant's, as Entra's keys are shared across tenants),
 *   GET  /common/discovery/instance (Microsoft hosts → metadata; others → 400 invalid_instance).
 * The endpoints a configuration document names are on the host the request came to, so a
 * client pointed at the authority directly (`AZURE_AUTHORITY_HOST=https://127.0.0.1:PORT`)
 * fetches the keys from there too. Further tenants (`otherTenants`) stand in for tenants a
 * shared broker must refuse.
 * Errors carry Entra's body: `{ error, error_description: "AADSTSnnn: … Trace ID: … Correlation ID: …
 * Timestamp: …", error_codes: [nnn], timestamp, trace_id, correlation_id, error_uri }`.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LocalCa } from './ca.js';
import type { TokenIssuer } from './entra.js';

/** An app registration with a client secret, and its service principal in the tenant. */
export interface AppRegistration {
  clientId: string;
  /** Object id of the app's service principal: the `oid` of its tokens. */
  objectId: string;
  displayName: string;
  secrets: string[];
}

export interface EntraAuthorityOptions {
  issuer: TokenIssuer;
  /** More tenants whose configuration and keys are published (no app registrations). */
  otherTenants?: TokenIssuer[];
  ca: LocalCa;
  apps: AppRegistration[];
  /** Shown in AADSTS700016. @default 'azdb emulator' */
  tenantDisplayName?: string;
  /** @default 3599, what Entra hands out */
  tokenTtlSeconds?: number;
}

export interface AuthorityRequest {
  method: string;
  host: string;
  path: string;
  status: number;
  /** Entra's error code, for refusals (`invalid_client`, ...). */
  error?: string;
}

export interface EntraAuthority {
  /** `http://127.0.0.1:PORT`, for `HTTPS_PROXY`. */
  readonly proxyUrl: string;
  /** `https://127.0.0.1:PORT`: the same endpoints without the proxy (not a host MSAL trusts). */
  readonly directUrl: string;
  readonly apps: readonly AppRegistration[];
  /** `{ HTTPS_PROXY, NO_PROXY }` for a client process (plus NODE_EXTRA_CA_CERTS, which the caller knows). */
  env(): Record<string, string>;
  /** Every HTTP request the authority answered, in order. */
  readonly requests: readonly AuthorityRequest[];
  /** CONNECT (or plain proxy) targets the proxy refused: anything that is not Entra. */
  readonly refused: readonly string[];
  readonly tokensIssued: number;
  /** Forgets `requests` and `refused` (between tests). */
  resetLog(): void;
  close(): Promise<void>;
}

export const ENTRA_HOST = 'login.microsoftonline.com';
/** Microsoft's aliases of the public cloud authority, as instance discovery lists them. */
const PUBLIC_CLOUD_ALIASES = ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'];
const DEFAULT_SUFFIX = '/.default';
const FORM = 'application/x-www-form-urlencoded';

export async function startEntraAuthority(options: EntraAuthorityOptions): Promise<EntraAuthority> {
  const { issuer, apps } = options;
  const tenantId = issuer.tenantId;
  const tenantName = options.tenantDisplayName ?? 'azdb emulator';
  const tenants = [issuer, ...(options.otherTenants ?? [])];
  const ttl = options.tokenTtlSeconds ?? 3599;
  const requests: AuthorityRequest[] = [];
  const refused: string[] = [];
  let tokensIssued = 0;

  const cert = await options.ca.issueServerCertificate({ dnsNames: PUBLIC_CLOUD_ALIASES, ipAddresses: ['127.0.0.1'] });

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', `https://${ENTRA_HOST}`);
    const record: AuthorityRequest = { method: request.method ?? '', host: request.headers.host ?? '', path: url.pathname, status: 0 };
    requests.push(record);
    const correlationId = headerValue(request, 'client-request-id') ?? randomUUID();
    const send = (status: number, body: unknown) => {
      record.status = status;
      sendJson(response, status, body, correlationId);
    };
    const refuse = (status: number, error: string, code: number, message: string) => {
      record.error = error;
      send(status, entraError(error, code, message, correlationId));
    };
    const segments = url.pathname.split('/').filter(Boolean);
    const tenant = segments[0] ?? '';
    const rest = segments.slice(1).join('/');

    if (request.method === 'GET' && tenant === 'common' && rest === 'discovery/instance') {
      return instanceDiscovery(url, send, refuse);
    }
    const here = `https://${request.headers.host ?? ENTRA_HOST}`;
    if (request.method === 'GET' && tenant === 'common' && (rest === 'discovery/keys' || rest === 'discovery/v2.0/keys')) {
      return send(200, { keys: tenants.flatMap((t) => t.jwks.keys) });
    }
    const published = tenants.find((t) => t.tenantId.toLowerCase() === tenant.toLowerCase());
    if (request.method === 'GET' && published && !knownTenant(tenant)) {
      if (rest === 'v2.0/.well-known/openid-configuration') return send(200, openIdConfiguration(here, published.tenantId, 'v2.0'));
      if (rest === '.well-known/openid-configuration') return send(200, openIdConfiguration(here, published.tenantId, 'v1.0'));
      if (rest === 'discovery/v2.0/keys' || rest === 'discovery/keys') return send(200, published.jwks);
    }
    if (!knownTenant(tenant)) {
      if (rest === 'oauth2/v2.0/token' || rest === 'v2.0/.well-known/openid-configuration' || rest === '.well-known/openid-configuration' || rest === 'discovery/v2.0/keys' || rest === 'discovery/keys') {
        return refuse(400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`);
      }
      return send(404, { error: 'not_found' });
    }
    if (request.method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') return send(200, openIdConfiguration(here, tenantId, 'v2.0'));
    if (request.method === 'GET' && rest === '.well-known/openid-configuration') return send(200, openIdConfiguration(here, tenantId, 'v1.0'));
    if (request.method === 'GET' && (rest === 'discovery/v2.0/keys' || rest === 'discovery/keys')) return send(200, issuer.jwks);
    if (rest !== 'oauth2/v2.0/token') return send(404, { error: 'not_found' });
    if (request.method !== 'POST') {
      return refuse(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests. Received a GET request.');
    }
    if (!(request.headers['content-type'] ?? '').toLowerCase().startsWith(FORM)) {
      return refuse(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
    }
    const form = new URLSearchParams(await readBody(request));
    const grantType = form.get('grant_type');
    if (!grantType) return refuse(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
    if (grantType !== 'client_credentials') {
      return refuse(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    const clientId = form.get('client_id');
    if (!clientId) return refuse(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    const scope = form.get('scope');
    if (!scope) return refuse(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
    const app = apps.find((a) => a.clientId.toLowerCase() === clientId.toLowerCase());
    if (!app) {
      return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantName}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
    }
    const secret = form.get('client_secret');
    if (secret === null && !form.has('client_assertion')) {
      return refuse(401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
    }
    if (secret === null || !app.secrets.includes(secret)) {
      return refuse(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`);
    }
    const scopes = scope.split(' ').filter(Boolean);
    const resourceScope = scopes.find((s) => s.endsWith(DEFAULT_SUFFIX));
    if (!resourceScope || scopes.length !== 1) {
      return refuse(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    const audience = resourceScope.slice(0, -DEFAULT_SUFFIX.length);
    const issuedAt = Math.floor(Date.now() / 1000);
    const accessToken = await issuer.issue({
      audience,
      objectId: app.objectId,
      appId: app.clientId,
      ttlSeconds: ttl,
      idtyp: 'app',
      notBefore: new Date(issuedAt * 1000),
    });
    tokensIssued++;
    send(200, { token_type: 'Bearer', expires_in: ttl, ext_expires_in: ttl, access_token: accessToken });
  };

  function knownTenant(tenant: string): boolean {
    return tenant.toLowerCase() === tenantId.toLowerCase();
  }

  /** Entra's document; v1.0 names the `sts.windows.net` issuer and the common keys, as Entra's does. */
  function openIdConfiguration(host: string, tenantId: string, version: 'v1.0' | 'v2.0'): Record<string, unknown> {
    const base = `${host}/${tenantId}`;
    if (version === 'v1.0') {
      return {
        token_endpoint: `${base}/oauth2/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${host}/common/discovery/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
        scopes_supported: ['openid'],
        issuer: `https://sts.windows.net/${tenantId}/`,
        authorization_endpoint: `${base}/oauth2/authorize`,
        cloud_instance_name: 'microsoftonline.com',
        cloud_graph_host_name: 'graph.windows.net',
        msgraph_host: 'graph.microsoft.com',
        rbac_url: 'https://pas.windows.net',
      };
    }
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `https://${ENTRA_HOST}/${tenantId}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'NA',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  function instanceDiscovery(
    url: URL,
    send: (status: number, body: unknown) => void,
    refuse: (status: number, error: string, code: number, message: string) => void,
  ): void {
    const endpoint = url.searchParams.get('authorization_endpoint');
    let host: string | undefined;
    let tenant = 'common';
    try {
      if (endpoint) {
        const parsed = new URL(endpoint);
        host = parsed.host.toLowerCase();
        tenant = parsed.pathname.split('/').filter(Boolean)[0] ?? 'common';
      }
    } catch {
      host = undefined;
    }
    if (host === undefined || !PUBLIC_CLOUD_ALIASES.includes(host)) {
      return refuse(400, 'invalid_instance', 50049, 'Unknown or invalid instance.');
    }
    send(200, {
      tenant_discovery_endpoint: `https://${ENTRA_HOST}/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: ENTRA_HOST, preferred_cache: 'login.windows.net', aliases: PUBLIC_CLOUD_ALIASES }],
    });
  }

  const https = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      sendJson(response, 500, { error: 'server_error', error_description: `emulator failure: ${error instanceof Error ? error.message : String(error)}` }, randomUUID());
    });
  });
  https.listen(0, '127.0.0.1');
  await once(https, 'listening');
  const httpsPort = (https.address() as AddressInfo).port;

  // The proxy: CONNECT to an Entra host name is tunnelled to the HTTPS server, anything else refused.
  const tunnels = new Set<Duplex>();
  const proxy = createHttpServer((request, response) => {
    refused.push(`${request.method ?? ''} ${request.url ?? ''}`);
    response.writeHead(403, { 'Content-Type': 'text/plain', Connection: 'close' });
    response.end('the azdb emulator proxy only reaches Microsoft Entra ID\n');
  });
  proxy.on('connect', (request: IncomingMessage, client: Duplex, head: Buffer) => {
    tunnels.add(client);
    client.on('close', () => tunnels.delete(client));
    client.on('error', () => client.destroy());
    const target = request.url ?? '';
    const [host, port] = splitHostPort(target);
    if (!PUBLIC_CLOUD_ALIASES.includes(host.toLowerCase()) || port !== 443) {
      refused.push(`CONNECT ${target}`);
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream: Socket = connect(httpsPort, '127.0.0.1');
    tunnels.add(upstream);
    upstream.on('close', () => tunnels.delete(upstream));
    upstream.on('error', () => client.destroy());
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    client.on('close', () => upstream.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const proxyPort = (proxy.address() as AddressInfo).port;
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;

  return {
    proxyUrl,
    directUrl: `https://127.0.0.1:${httpsPort}`,
    apps,
    env: () => ({ HTTPS_PROXY: proxyUrl, NO_PROXY: '127.0.0.1,localhost' }),
    requests,
    refused,
    get tokensIssued() {
      return tokensIssued;
    },
    resetLog() {
      requests.length = 0;
      refused.length = 0;
    },
    async close() {
      for (const socket of tunnels) socket.destroy();
      const closing = [once(https, 'close'), once(proxy, 'close')];
      https.close();
      https.closeAllConnections();
      proxy.close();
      proxy.closeAllConnections();
      await Promise.all(closing);
    },
  };
}

function entraError(error: string, code: number, message: string, correlationId: string): Record<string, unknown> {
  const traceId = randomUUID();
  const now = new Date();
  const stamp = now.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `AADSTS${code}: ${message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${stamp}`,
    error_codes: [code],
    timestamp: stamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://${ENTRA_HOST}/error?code=${code}`,
  };
}

function splitHostPort(target: string): [string, number] {
  const at = target.lastIndexOf(':');
  if (at <= 0) return [target, 443];
  return [target.slice(0, at).replace(/^\[|\]$/g, ''), Number(target.slice(at + 1))];
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > 1_000_000) throw new Error('request body too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(response: ServerResponse, status: number, body: unknown, correlationId: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store, no-cache',
    'x-ms-request-id': randomUUID(),
    'client-request-id': correlationId,
  });
  response.end(text);
}
