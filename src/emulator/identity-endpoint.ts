/**
 * The managed identity endpoint as Azure App Service exposes it (api-version 2019-08-01): the
 * process gets `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, and an unmodified `@azure/identity`
 * (`ManagedIdentityCredential`, `DefaultAzureCredential`) asks
 *   GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=|&mi_res_id=|&object_id=]
 *   X-IDENTITY-HEADER: {IDENTITY_HEADER}
 * and reads `{ access_token, expires_on (epoch seconds, as a string), resource, token_type,
 * client_id }`. Failure modes are App Service's: a missing or wrong header → 401; an identity
 * that is not assigned → 400 `{"statusCode":400,"message":"Unable to load the proper Managed
 * Identity.","correlationId":…}`; `error-500` → 500 with the same body shape; `unreachable` →
 * the listening socket is closed (connection refused) and reopened on the same port later;
 * `hang` → requests are taken and never answered (a stuck platform identity service); those stay
 * unanswered after the mode changes back, until the client gives up or the endpoint closes.
 *
 * What @azure/identity 4.13.1 / @azure/msal-node 5.6 do with it (checked by
 * test/emulator/identity-endpoint.test.ts):
 * - http://127.0.0.1 endpoints are accepted: ManagedIdentityCredential sets
 *   `allowInsecureConnection` for managed identity requests.
 * - MSAL keeps ONE token cache per process (a static `NodeStorage` in ManagedIdentityApplication)
 *   keyed by identity (client id, or system-assigned) and resource, so separate credential
 *   instances share tokens: a second `new ManagedIdentityCredential()` does not call the
 *   endpoint while the first one's token is cached.
 * - A cached token is reused while now + 300 s ≤ `expires_on` (MSAL's tokenRenewalOffsetSeconds
 *   = 300, whole seconds). A token whose lifetime is < 300 s is therefore never reused: every
 *   getToken() is a request to the endpoint (`requests` counts them); a 300-s token only within
 *   the second it was issued. Tokens living more than 2 hours get `refreshAfterTimestamp` at half
 *   their lifetime; after it MSAL fetches a new one on the next call.
 * - MSAL also freezes the managed identity *source* per process (static
 *   `ManagedIdentityClient.identitySource`): IDENTITY_ENDPOINT/IDENTITY_HEADER are read on the
 *   first token request of the process, together with the HTTP client (and so the retry options)
 *   of the credential that made it. Later changes to those variables, or another credential's
 *   `retryOptions`, have no effect. Hence `unreachable` reopens on the SAME port, and one process
 *   should use one endpoint for its lifetime.
 * - With default options a 500 or a refused connection is retried 3 times with exponential
 *   back-off (4 requests and ≈ 4 s for a 500, ≈ 5.5 s for a refused connection) before the
 *   credential fails; `retryOptions: { maxRetries: 0 }`
 *   on the first credential of the process turns that off. Errors surface as
 *   CredentialUnavailableError ("ManagedIdentityCredential: Authentication failed…" for HTTP
 *   errors, "…Network unreachable…" for a refused connection).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BugError } from '../errors.js';
import type { TokenIssuer } from './entra.js';

export interface ManagedIdentity {
  clientId: string;
  objectId: string;
  /** ARM id of a user-assigned identity, matched by `mi_res_id`. */
  resourceId?: string;
  /** The identity used when the request names none (system-assigned). */
  default?: boolean;
}

export type IdentityEndpointMode = 'up' | 'error-500' | 'unreachable' | 'hang';

export interface IdentityEndpointOptions {
  issuer: TokenIssuer;
  identities: ManagedIdentity[];
  /** @default 3600 */
  tokenTtlSeconds?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (ephemeral) */
  port?: number;
  /** The secret for IDENTITY_HEADER. @default a new random one */
  header?: string;
}

export interface IdentityEndpoint {
  /** Full URL for `IDENTITY_ENDPOINT`. */
  readonly endpoint: string;
  /** The secret for `IDENTITY_HEADER`. */
  readonly header: string;
  /** `{ IDENTITY_ENDPOINT, IDENTITY_HEADER }`. */
  env(): Record<string, string>;
  /** Token requests received (any outcome, including 401/400/500). */
  readonly requests: number;
  /** Tokens handed out. */
  readonly tokensIssued: number;
  /** Requests taken in `hang` mode and still unanswered (their clients have not given up). */
  readonly held: number;
  /** Resolves once the listener is in the new state (closed for `unreachable`). */
  setMode(mode: IdentityEndpointMode): Promise<void>;
  setTokenTtl(seconds: number): void;
  close(): Promise<void>;
}

export const APP_SERVICE_API_VERSION = '2019-08-01';
const TOKEN_PATH = '/msi/token/';
const DEFAULT_SCOPE_SUFFIX = '/.default';

export async function startIdentityEndpoint(options: IdentityEndpointOptions): Promise<IdentityEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const header = options.header ?? randomBytes(24).toString('hex');
  let ttlSeconds = options.tokenTtlSeconds ?? 3600;
  let mode: IdentityEndpointMode = 'up';
  let requests = 0;
  let tokensIssued = 0;
  let closed = false;
  const held = new Set<ServerResponse>();

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== TOKEN_PATH && `${url.pathname}/` !== TOKEN_PATH) {
      return sendError(response, 404, 'Not Found');
    }
    requests++;
    if (request.method !== 'GET') return sendError(response, 405, 'Method Not Allowed');
    if (request.headers['x-identity-header'] !== header) return sendError(response, 401, 'Unauthorized');
    if (mode === 'hang') {
      held.add(response);
      response.on('close', () => held.delete(response));
      return;
    }
    if (mode === 'error-500') {
      return sendError(response, 500, 'An unexpected error occured while fetching the AAD Token.');
    }
    const apiVersion = url.searchParams.get('api-version');
    if (apiVersion !== APP_SERVICE_API_VERSION) {
      return sendError(response, 400, `The api-version '${apiVersion ?? ''}' is not supported.`);
    }
    const resource = url.searchParams.get('resource');
    if (!resource) return sendError(response, 400, 'The resource parameter is required.');
    const identity = selectIdentity(options.identities, url.searchParams);
    if (!identity) return sendError(response, 400, 'Unable to load the proper Managed Identity.');

    const audience = resource.endsWith(DEFAULT_SCOPE_SUFFIX) ? resource.slice(0, -DEFAULT_SCOPE_SUFFIX.length) : resource;
    const issuedAt = Math.floor(Date.now() / 1000);
    const accessToken = await options.issuer.issue({
      audience,
      objectId: identity.objectId,
      appId: identity.clientId,
      ttlSeconds,
      idtyp: 'app',
      notBefore: new Date(issuedAt * 1000),
    });
    tokensIssued++;
    sendJson(response, 200, {
      access_token: accessToken,
      expires_on: String(issuedAt + ttlSeconds),
      resource,
      token_type: 'Bearer',
      client_id: identity.clientId,
    });
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      sendError(response, 500, `emulator failure: ${error instanceof Error ? error.message : String(error)}`);
    });
  });
  const port = await listen(server, host, options.port ?? 0);
  const endpoint = `http://${host}:${port}${TOKEN_PATH}`;

  const stopListening = async (): Promise<void> => {
    if (!server.listening) return;
    const closing = once(server, 'close');
    server.close();
    server.closeAllConnections();
    await closing;
  };

  return {
    endpoint,
    header,
    env: () => ({ IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: header }),
    get requests() {
      return requests;
    },
    get tokensIssued() {
      return tokensIssued;
    },
    get held() {
      return held.size;
    },
    async setMode(next) {
      if (closed) throw new BugError('the identity endpoint is closed');
      mode = next;
      if (next === 'unreachable') await stopListening();
      else if (!server.listening) await listen(server, host, port);
    },
    setTokenTtl(seconds) {
      ttlSeconds = seconds;
    },
    async close() {
      closed = true;
      await stopListening();
    },
  };
}

function selectIdentity(identities: ManagedIdentity[], query: URLSearchParams): ManagedIdentity | undefined {
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const clientId = query.get('client_id');
  if (clientId !== null) return identities.find((identity) => same(identity.clientId, clientId));
  const objectId = query.get('object_id') ?? query.get('principal_id');
  if (objectId !== null) return identities.find((identity) => same(identity.objectId, objectId));
  const resourceId = query.get('mi_res_id');
  if (resourceId !== null) {
    return identities.find((identity) => identity.resourceId !== undefined && same(identity.resourceId, resourceId));
  }
  return identities.find((identity) => identity.default);
}

function sendError(response: ServerResponse, statusCode: number, message: string): void {
  sendJson(response, statusCode, { statusCode, message, correlationId: randomUUID() });
}

function sendJson(response: ServerResponse, statusCode: number, body: unknown): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(statusCode, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'X-CORRELATION-ID': randomUUID(),
  });
  response.end(text);
}

async function listen(server: Server, host: string, port: number): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening'); // rejects on 'error' (EADDRINUSE)
  return (server.address() as AddressInfo).port;
}
