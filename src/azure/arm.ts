/**
 * A small Azure Resource Manager reader on @azure/core-rest-pipeline: GET with a bearer token
 * from the process's {@link TokenCache}, ARM's throttling honoured (429 + Retry-After, retried by
 * the pipeline's retry policy), list pages followed through `nextLink`. Only what discovery needs.
 *
 * The token goes only to the configured ARM origin: a `nextLink` pointing anywhere else is refused
 * before a request is made. Errors carry ARM's status, code and message, redacted.
 */
import {
  createHttpHeaders,
  createPipelineFromOptions,
  createPipelineRequest,
  createDefaultHttpClient,
  isRestError,
  type HttpClient,
  type Pipeline,
  type PipelinePolicy,
} from '@azure/core-rest-pipeline';
import { ExternalError, errorMessage, redactSecrets } from '../errors.js';
import type { TokenCache } from './token-cache.js';

export interface ArmClientOptions {
  /** ARM base URL, e.g. `https://management.azure.com` (or `azure.resource_manager_endpoint`). */
  endpoint: string;
  /** The Entra scope of ARM tokens in this cloud, e.g. `https://management.azure.com/.default`. */
  scope: string;
  tokens: TokenCache;
  /** PEM CA(s) to trust instead of the system CAs (tests). @default system CAs + NODE_EXTRA_CA_CERTS */
  ca?: string;
  /** Retries of a throttled (429, Retry-After honoured) or failed request. @default 3 */
  maxRetries?: number;
  /** Longest Retry-After honoured; a longer one ends the attempt at once. @default 60_000 */
  maxRetryAfterMs?: number;
  /** Limit for one request including retries. @default 60_000 */
  requestTimeoutMs?: number;
  /** Pages followed per listing, against a `nextLink` loop. @default 1000 */
  maxPages?: number;
}

/** A failed ARM request: the HTTP status and ARM's error code (`AuthorizationFailed`, …). */
export class ArmRequestError extends ExternalError {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    readonly armMessage: string,
    readonly retryAfterSeconds: number | undefined,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

export interface ArmClient {
  readonly endpoint: string;
  /** Every item of a list, following `nextLink`. `path` starts with `/` and includes the query. */
  listAll<T = Record<string, unknown>>(path: string, signal?: AbortSignal): Promise<T[]>;
}

export function createArmClient(options: ArmClientOptions): ArmClient {
  const endpoint = new URL(options.endpoint);
  if (endpoint.protocol !== 'https:') {
    throw new ExternalError(`the ARM endpoint ${options.endpoint} is not https`, { hint: 'Set azure.resource_manager_endpoint to an https:// URL.' });
  }
  const origin = endpoint.origin;
  const base = options.endpoint.replace(/\/+$/, '');
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const maxPages = options.maxPages ?? 1000;

  const pipeline: Pipeline = createPipelineFromOptions({
    retryOptions: { maxRetries: options.maxRetries ?? 3, maxRetryDelayInMs: maxRetryAfterMs },
    userAgentOptions: { userAgentPrefix: 'azdb' },
    ...(options.ca ? { tlsOptions: { ca: options.ca } } : {}),
  });
  pipeline.addPolicy(bearerPolicy(options.tokens, options.scope, origin), { phase: 'Sign' });
  pipeline.addPolicy(capRetryAfterPolicy(maxRetryAfterMs), { afterPhase: 'Retry' });
  const httpClient: HttpClient = createDefaultHttpClient();

  const getJson = async (url: string, signal: AbortSignal | undefined): Promise<Record<string, unknown>> => {
    if (new URL(url).origin !== origin) {
      throw new ArmRequestError(`ARM sent a nextLink to ${new URL(url).origin}, not ${origin}; not following it`, undefined, undefined, '', undefined);
    }
    const timeout = AbortSignal.timeout(options.requestTimeoutMs ?? 60_000);
    const request = createPipelineRequest({
      url,
      method: 'GET',
      headers: createHttpHeaders({ Accept: 'application/json' }),
      abortSignal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    let response;
    try {
      response = await pipeline.sendRequest(httpClient, request);
    } catch (error) {
      if (error instanceof ExternalError) throw error;
      const status = isRestError(error) ? error.statusCode : undefined;
      const what = timeout.aborted ? `timed out after ${(options.requestTimeoutMs ?? 60_000) / 1000} s` : errorMessage(error);
      throw new ArmRequestError(`GET ${describePath(url)} failed: ${what}`, status, isRestError(error) ? error.code : undefined, '', undefined, {
        cause: error,
        hint: `Check that ${origin} is reachable from here (proxy, firewall, DNS).`,
      });
    }
    const text = response.bodyAsText ?? '';
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (response.status >= 200 && response.status < 300) {
      if (!isRecord(body)) throw new ArmRequestError(`GET ${describePath(url)}: ARM answered ${response.status} without a JSON object`, response.status, undefined, '', undefined);
      return body;
    }
    const error = isRecord(body) && isRecord(body['error']) ? body['error'] : {};
    const code = typeof error['code'] === 'string' ? error['code'] : undefined;
    const message = redactSecrets(typeof error['message'] === 'string' ? error['message'] : text.slice(0, 300));
    const retryAfter = Number(response.headers.get('retry-after') ?? response.headers.get('x-azdb-retry-after') ?? Number.NaN);
    throw new ArmRequestError(
      `GET ${describePath(url)}: ${response.status}${code ? ` ${code}` : ''}: ${message}`,
      response.status,
      code,
      message,
      Number.isFinite(retryAfter) ? retryAfter : undefined,
    );
  };

  return {
    endpoint: base,
    async listAll<T>(path: string, signal?: AbortSignal): Promise<T[]> {
      const items: T[] = [];
      let url: string | undefined = `${base}${path}`;
      for (let page = 0; url !== undefined; page++) {
        if (page >= maxPages) throw new ArmRequestError(`GET ${describePath(url)}: more than ${maxPages} pages; stopped`, undefined, undefined, '', undefined);
        const body = await getJson(url, signal);
        const value = body['value'];
        if (!Array.isArray(value)) throw new ArmRequestError(`GET ${describePath(url)}: the answer has no "value" list`, 200, undefined, '', undefined);
        items.push(...(value as T[]));
        const next = body['nextLink'];
        url = typeof next === 'string' && next !== '' ? next : undefined;
      }
      return items;
    },
  };
}

/** Authorization from the token cache; a token never leaves for another origin. */
function bearerPolicy(tokens: TokenCache, scope: string, origin: string): PipelinePolicy {
  return {
    name: 'azdbArmBearer',
    async sendRequest(request, next) {
      if (new URL(request.url).origin !== origin) throw new ExternalError(`refusing to send an ARM token to ${new URL(request.url).origin}`);
      request.headers.set('Authorization', `Bearer ${await tokens.getToken(scope)}`);
      return next(request);
    },
  };
}

/**
 * ARM may ask for minutes of waiting; the pipeline would sleep that long. A Retry-After beyond
 * the cap is dropped from the response so the retry policy gives up and the caller reports it.
 */
function capRetryAfterPolicy(maxMs: number): PipelinePolicy {
  return {
    name: 'azdbCapRetryAfter',
    async sendRequest(request, next) {
      const response = await next(request);
      if (response.status === 429) {
        const seconds = Number(response.headers.get('retry-after'));
        if (Number.isFinite(seconds) && seconds * 1000 > maxMs) {
          response.headers.set('x-azdb-retry-after', String(seconds));
          response.headers.delete('retry-after');
        }
      }
      return response;
    },
  };
}

function describePath(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.delete('$skipToken');
  parsed.searchParams.delete('$skiptoken');
  return `${parsed.pathname}${parsed.search}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
