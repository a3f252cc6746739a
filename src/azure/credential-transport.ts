/**
 * The HTTP client of every credential azdb builds: Azure's own (@azure/core-rest-pipeline's
 * default client), which also remembers each request that failed to get an answer.
 *
 * MSAL turns a managed identity request that got no answer into an opaque `network_error`, which
 * @azure/identity reports as "Network unreachable" and drops the cause, so a refused loopback
 * port read as an unreachable network. {@link explainTransportFailures} puts the real reason back
 * ("the identity endpoint http://127.0.0.1:PORT/msi/token/ refused the connection (connect
 * ECONNREFUSED 127.0.0.1:PORT)").
 *
 * Requests without a time limit get one, so an attempt the token cache abandoned at its deadline
 * (src/azure/token-cache.ts) does not hold a socket for ever. One client per process: MSAL keeps
 * the HTTP client of the first managed identity credential it sees for the life of the process.
 */
import { AggregateAuthenticationError, CredentialUnavailableError, type TokenCredential } from '@azure/identity';
import { createDefaultHttpClient, type HttpClient, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { formatSeconds } from '../time-limit.js';

/** No credential request waits longer than this for its answer. */
export const CREDENTIAL_REQUEST_TIMEOUT_MS = 30_000;

export interface TransportFailure {
  /** Where the request went, without its query (scopes and api-version only, but they add nothing). */
  endpoint: string;
  /** The system error code (`ECONNREFUSED`, `ETIMEDOUT`…), if there is one. */
  code: string | undefined;
  message: string;
  at: number;
}

const KEPT_FAILURES = 16;
const failures: TransportFailure[] = [];
let client: HttpClient | undefined;

/** The one recording HTTP client of this process, for the `httpClient` option of every credential. */
export function credentialHttpClient(): HttpClient {
  client ??= recordingClient(createDefaultHttpClient());
  return client;
}

function recordingClient(inner: HttpClient): HttpClient {
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      if (!(request.timeout > 0)) request.timeout = CREDENTIAL_REQUEST_TIMEOUT_MS;
      try {
        return await inner.sendRequest(request);
      } catch (error) {
        failures.push(describeRequestFailure(request, error));
        if (failures.length > KEPT_FAILURES) failures.shift();
        throw error;
      }
    },
  };
}

function describeRequestFailure(request: PipelineRequest, error: unknown): TransportFailure {
  const url = new URL(request.url);
  const code = (error as { code?: unknown }).code;
  const timedOut = error instanceof Error && error.name === 'AbortError' && !request.abortSignal?.aborted;
  return {
    endpoint: `${url.origin}${url.pathname}`,
    code: typeof code === 'string' ? code : undefined,
    message: timedOut ? `no answer within ${formatSeconds(request.timeout)}` : error instanceof Error ? error.message : String(error),
    at: Date.now(),
  };
}

/** The latest failure recorded at or after `since` (ms). */
export function transportFailureSince(since: number): TransportFailure | undefined {
  const latest = failures.at(-1);
  return latest && latest.at >= since ? latest : undefined;
}

/** What a failed request came to, in words: "… refused the connection (connect ECONNREFUSED 127.0.0.1:41234)". */
export function describeTransportFailure(failure: TransportFailure, managedIdentity: boolean): string {
  const where = managedIdentity ? `the identity endpoint ${failure.endpoint}` : failure.endpoint;
  return `${where} ${PHRASES[failure.code ?? ''] ?? 'could not be reached'} (${failure.message})`;
}

const PHRASES: Record<string, string> = {
  ECONNREFUSED: 'refused the connection',
  ECONNRESET: 'reset the connection',
  ETIMEDOUT: 'did not answer in time',
  ENOTFOUND: 'has a host name that does not resolve',
  EAI_AGAIN: 'has a host name that could not be resolved now',
  EHOSTUNREACH: 'is unreachable',
  ENETUNREACH: 'is on a network this machine cannot reach',
};

/** MSAL's opaque error for a request that got no answer. */
const OPAQUE_NETWORK_ERROR = /network_error/;
const SOURCE_NAME = /^(\w+Credential)\b/;

/**
 * `credential`, whose failures name the real reason of a request that got no answer instead of
 * MSAL's `network_error`. The errors keep their types, so the chain's semantics (unavailable →
 * next source) and the reading of them (src/azure/credential.ts) stay as they were.
 */
export function explainTransportFailures(credential: TokenCredential): TokenCredential {
  return {
    async getToken(scopes, options) {
      const started = Date.now();
      try {
        return await credential.getToken(scopes, options);
      } catch (error) {
        const failure = transportFailureSince(started);
        throw failure ? withTransportReason(error, failure) : error;
      }
    },
  };
}

function withTransportReason(error: unknown, failure: TransportFailure): unknown {
  if (error instanceof AggregateAuthenticationError) {
    const errors = error.errors.map((e: unknown) => withTransportReason(e, failure));
    return errors.some((e, i) => e !== error.errors[i]) ? new AggregateAuthenticationError(errors, error.message) : error;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (!OPAQUE_NETWORK_ERROR.test(message)) return error;
  const source = SOURCE_NAME.exec(message)?.[1] ?? 'ManagedIdentityCredential';
  return new CredentialUnavailableError(`${source}: ${describeTransportFailure(failure, source === 'ManagedIdentityCredential')}`, { cause: error });
}
