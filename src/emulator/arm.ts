/**
 * Emulated Azure Resource Manager over HTTPS (certificate from the local CA for `localhost` and
 * 127.0.0.1): the routes azdb's discovery uses, with ARM's authentication, api-version check,
 * paging (`nextLink` with `$skipToken`) and failure modes (403 AuthorizationFailed, 429 with
 * Retry-After) on demand.
 *
 *   GET /subscriptions
 *   GET /subscriptions/{sub}
 *   GET /subscriptions/{sub}/providers/{Microsoft.DBforPostgreSQL|Microsoft.DBforMySQL}/{flexibleServers|servers}
 *   GET /subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}
 *   GET /subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}
 *
 * Paths are matched case-insensitively, as ARM does. Order of checks, as ARM: token, api-version,
 * route, subscription exists, throttling, authorization, resource group exists.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import type { LocalCa } from './ca.js';
import { TokenRejected, type TokenClaims, type TokenIssuer } from './entra.js';
import * as armErrors from './arm-errors.js';
import {
  SERVER_TYPES,
  serverResource,
  subscriptionResource,
  type EmulatedServer,
  type EmulatedServerType,
  type EmulatedSubscription,
  type Json,
} from './arm-resources.js';

export { SERVER_TYPES, type EmulatedServer, type EmulatedServerType, type EmulatedSubscription } from './arm-resources.js';

export interface ArmOptions {
  issuer: TokenIssuer;
  ca: LocalCa;
  subscriptions: EmulatedSubscription[];
  servers: EmulatedServer[];
  /** Items per page; longer lists get a `nextLink`. @default no paging */
  pageSize?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (ephemeral) */
  port?: number;
}

export type ThrottleTarget = EmulatedServerType | 'subscriptions';

export interface EmulatedArm {
  /** `https://127.0.0.1:PORT`, for `resource_manager_endpoint`. */
  readonly endpoint: string;
  /** Requests received, any outcome. */
  readonly requests: number;
  /** Listing (or reading) servers in the subscription fails with 403, for all types or those given. */
  forbidSubscription(subscriptionId: string, types?: EmulatedServerType[]): void;
  allowSubscription(subscriptionId: string): void;
  /**
   * The next `times` requests for `target` (in every subscription) get 429 with
   * `Retry-After: retryAfterSeconds`; `Infinity` keeps throttling until {@link unthrottle}.
   */
  throttle(target: ThrottleTarget, times: number, retryAfterSeconds?: number): void;
  unthrottle(target: ThrottleTarget): void;
  /** Replaces the servers ARM lists. */
  setServers(servers: EmulatedServer[]): void;
  close(): Promise<void>;
}

type Handled = { status: number; body: Json; headers?: Record<string, string> } | armErrors.ArmError;

interface Caller {
  claims: TokenClaims;
}

export async function startArm(options: ArmOptions): Promise<EmulatedArm> {
  const host = options.host ?? '127.0.0.1';
  const tenantId = options.issuer.tenantId;
  let servers = [...options.servers];
  const forbidden = new Map<string, ReadonlySet<EmulatedServerType>>();
  const throttles = new Map<ThrottleTarget, { remaining: number; retryAfterSeconds: number }>();
  let requests = 0;
  let endpoint = '';

  const authenticate = async (request: IncomingMessage): Promise<Caller | armErrors.ArmError> => {
    const authorization = request.headers.authorization;
    if (authorization === undefined) return armErrors.missingAuthorization();
    const match = /^Bearer +(\S+)$/i.exec(authorization);
    if (!match?.[1]) return armErrors.malformedAuthorization();
    try {
      return { claims: await options.issuer.verify(match[1], { audience: armErrors.ARM_AUDIENCES }) };
    } catch (error) {
      if (!(error instanceof TokenRejected)) throw error;
      return armErrors.invalidToken({ reason: error.reason, tenantId, ...unverifiedClaims(match[1]) });
    }
  };

  const takeThrottle = (target: ThrottleTarget): number | undefined => {
    const state = throttles.get(target);
    if (!state || state.remaining <= 0) return undefined;
    state.remaining--;
    return state.retryAfterSeconds;
  };

  const listPage = (url: URL, items: Json[], extra: Json = {}): Handled => {
    const pageSize = options.pageSize;
    const rawToken = url.searchParams.get('$skipToken') ?? url.searchParams.get('$skiptoken');
    const offset = rawToken === null ? 0 : decodeSkipToken(rawToken);
    if (offset === undefined || offset > items.length) return armErrors.invalidSkipToken();
    if (pageSize === undefined) return { status: 200, body: { value: items.slice(offset), ...extra } };
    const end = offset + pageSize;
    const body: Json = { value: items.slice(offset, end), ...extra };
    if (end < items.length) {
      const apiVersion = encodeURIComponent(url.searchParams.get('api-version') ?? '');
      body.nextLink = `${endpoint}${url.pathname}?api-version=${apiVersion}&$skipToken=${encodeSkipToken(end)}`;
    }
    return { status: 200, body };
  };

  const handleServers = (
    url: URL,
    caller: Caller,
    route: { subscriptionId: string; resourceGroup?: string; namespace: string; type: string; name?: string },
  ): Handled => {
    const apiVersion = url.searchParams.get('api-version') ?? '';
    const type = SERVER_TYPES.find((each) => same(each, `${route.namespace}/${route.type}`));
    if (!type) return armErrors.invalidResourceType(route.namespace, route.type, apiVersion);
    const subscription = options.subscriptions.find((each) => same(each.subscriptionId, route.subscriptionId));
    if (!subscription) return armErrors.subscriptionNotFound(route.subscriptionId);
    const retryAfter = takeThrottle(type);
    if (retryAfter !== undefined) {
      return armErrors.throttled({ subscriptionId: subscription.subscriptionId }, caller.claims.oid, retryAfter);
    }
    if (forbidden.get(subscription.subscriptionId.toLowerCase())?.has(type)) {
      const scope =
        `/subscriptions/${route.subscriptionId}` + (route.resourceGroup === undefined ? '' : `/resourceGroups/${route.resourceGroup}`);
      return armErrors.authorizationFailed(caller.claims.upn ?? caller.claims.appid, caller.claims.oid, `${type}/read`, scope);
    }
    const inSubscription = servers.filter((server) => same(server.subscriptionId, subscription.subscriptionId));
    const { resourceGroup } = route;
    if (resourceGroup !== undefined && !inSubscription.some((server) => same(server.resourceGroup, resourceGroup))) {
      return armErrors.resourceGroupNotFound(resourceGroup);
    }
    const matching = inSubscription.filter(
      (server) => server.type === type && (resourceGroup === undefined || same(server.resourceGroup, resourceGroup)),
    );
    if (route.name === undefined) return listPage(url, matching.map((server) => serverResource(server, tenantId)));
    const { name } = route;
    const server = matching.find((each) => same(each.name, name));
    return server ? { status: 200, body: serverResource(server, tenantId) } : armErrors.resourceNotFound(type, name);
  };

  const route = async (request: IncomingMessage, url: URL): Promise<Handled> => {
    const caller = await authenticate(request);
    if ('status' in caller) return caller;
    if (!url.searchParams.get('api-version')) return armErrors.missingApiVersion();
    if (request.method !== 'GET') return armErrors.methodNotAllowed(request.method ?? '');

    const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const lower = segments.map((segment) => segment.toLowerCase());
    if (lower[0] !== 'subscriptions') return armErrors.notFound(url.pathname);
    const [, subscriptionId, third, fourth, fifth, sixth, seventh, eighth] = segments;

    if (subscriptionId === undefined) {
      const retryAfter = takeThrottle('subscriptions');
      if (retryAfter !== undefined) return armErrors.throttled({ tenantId }, caller.claims.oid, retryAfter);
      const all = options.subscriptions.map((each) => subscriptionResource(each, tenantId));
      return listPage(url, all, { count: { type: 'Total', value: all.length } });
    }
    if (third === undefined) {
      const subscription = options.subscriptions.find((each) => same(each.subscriptionId, subscriptionId));
      if (!subscription) return armErrors.subscriptionNotFound(subscriptionId);
      return { status: 200, body: subscriptionResource(subscription, tenantId) };
    }
    if (lower[2] === 'providers' && fourth !== undefined && fifth !== undefined && segments.length === 5) {
      return handleServers(url, caller, { subscriptionId, namespace: fourth, type: fifth });
    }
    if (
      lower[2] === 'resourcegroups' &&
      fourth !== undefined &&
      lower[4] === 'providers' &&
      sixth !== undefined &&
      seventh !== undefined &&
      segments.length <= 8
    ) {
      return handleServers(url, caller, {
        subscriptionId,
        resourceGroup: fourth,
        namespace: sixth,
        type: seventh,
        ...(eighth === undefined ? {} : { name: eighth }),
      });
    }
    return armErrors.notFound(url.pathname);
  };

  const certificate = await options.ca.issueServerCertificate(certificateNames(host));
  const server = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (request, response) => {
    requests++;
    const url = new URL(request.url ?? '/', 'https://localhost');
    route(request, url).then(
      (handled) => send(response, handled),
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        send(response, { status: 500, body: { error: { code: 'InternalServerError', message: `emulator failure: ${message}` } } });
      },
    );
  });
  server.listen(options.port ?? 0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  endpoint = `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;

  return {
    endpoint,
    get requests() {
      return requests;
    },
    forbidSubscription(subscriptionId, types = [...SERVER_TYPES]) {
      forbidden.set(subscriptionId.toLowerCase(), new Set(types));
    },
    allowSubscription(subscriptionId) {
      forbidden.delete(subscriptionId.toLowerCase());
    },
    throttle(target, times, retryAfterSeconds = 1) {
      throttles.set(target, { remaining: times, retryAfterSeconds });
    },
    unthrottle(target) {
      throttles.delete(target);
    },
    setServers(next) {
      servers = [...next];
    },
    async close() {
      if (!server.listening) return;
      const closing = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closing;
    },
  };
}

function certificateNames(host: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = ['localhost'];
  const ipAddresses = ['127.0.0.1'];
  if (isIP(host) !== 0) {
    if (!ipAddresses.includes(host)) ipAddresses.push(host);
  } else if (!dnsNames.includes(host)) {
    dnsNames.push(host);
  }
  return { dnsNames, ipAddresses };
}

function send(response: ServerResponse, handled: Handled): void {
  const text = JSON.stringify(handled.body);
  const requestId = randomUUID();
  response.writeHead(handled.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache',
    'x-ms-request-id': requestId,
    'x-ms-correlation-request-id': requestId,
    ...handled.headers,
  });
  response.end(text);
}

function unverifiedClaims(token: string): { aud?: unknown; iss?: unknown; exp?: unknown; nbf?: unknown } {
  try {
    const { aud, iss, exp, nbf } = decodeJwt(token);
    return { aud, iss, exp, nbf };
  } catch {
    return {};
  }
}

function encodeSkipToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset }), 'utf8').toString('base64url');
}

function decodeSkipToken(token: string): number | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown };
    return typeof parsed.offset === 'number' && Number.isInteger(parsed.offset) && parsed.offset >= 0 ? parsed.offset : undefined;
  } catch {
    return undefined;
  }
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
