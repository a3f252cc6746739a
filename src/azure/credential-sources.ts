/**
 * Each source of DefaultAzureCredential's chain probed on its own (`azdb creds`, the doctor,
 * setup step 1), in the chain's
 * order, with the real @azure/identity classes configured as DefaultAzureCredential configures
 * them. Says which source DefaultAzureCredential would use (the first that yields a token,
 * unless an earlier one fails hard, which ends the chain) and, for the others, why not and how to
 * fix it. The token itself is only decoded for its non-secret claims and then dropped.
 */
import {
  AzureCliCredential,
  AzureDeveloperCliCredential,
  AzurePowerShellCredential,
  EnvironmentCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type ManagedIdentityCredentialClientIdOptions,
  type TokenCredential,
} from '@azure/identity';
import { CLOUDS, authorityHost, databaseScope, type CloudName } from './clouds.js';
import { describeCredentialFailure } from './credential-failure.js';
import { credentialHttpClient, explainTransportFailures } from './credential-transport.js';
import { errorMessage } from '../errors.js';
import { TimeLimitExceeded, formatSeconds, withTimeLimit } from '../time-limit.js';
import { describeClaims, decodeTokenClaims, type TokenClaims } from './token-claims.js';

/**
 * DefaultAzureCredential's order, without the sources of {@link UNPROBED_SOURCES}.
 * test/azure/credential-sources.test.ts checks it against the installed @azure/identity.
 */
export const SOURCE_NAMES = [
  'EnvironmentCredential',
  'WorkloadIdentityCredential',
  'ManagedIdentityCredential',
  'AzureCliCredential',
  'AzurePowerShellCredential',
  'AzureDeveloperCliCredential',
] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

/** In the chain but not probed: an editor's sign-in and the WAM broker (a desktop plug-in), neither of which a server has. */
export const UNPROBED_SOURCES: readonly string[] = ['VisualStudioCodeCredential', 'BrokerCredential'];

const PROD_SOURCES: readonly SourceName[] = ['EnvironmentCredential', 'WorkloadIdentityCredential', 'ManagedIdentityCredential'];

export interface CredsContext {
  cloud: CloudName;
  managedIdentityClientId?: string;
  env: NodeJS.ProcessEnv;
}

export interface SourceSettings {
  authorityHost: string;
  managedIdentityClientId: string | undefined;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

/** What a person can do about a source that gave no token (src/diagnostics/credential-advice.ts). */
export type SourceAdvisor = (name: SourceName, reason: string, env: NodeJS.ProcessEnv) => { detail: string; hint: string };

export interface CredsDeps {
  createSource(name: SourceName, settings: SourceSettings): TokenCredential;
  /** Turns a failure's reason into words and a hint. @default the reason, no hint */
  advise?: SourceAdvisor;
  /** Time limit of each source. @default 5_000 */
  timeoutMs?: number;
}

export interface SourceResult {
  name: SourceName;
  ok: boolean;
  detail: string;
  hint: string;
  claims?: TokenClaims;
  /** Failed in a way that ends DefaultAzureCredential's chain (not "unavailable"). */
  stopsChain: boolean;
  /** Not probed: AZURE_TOKEN_CREDENTIALS leaves it out of the chain. */
  excluded: boolean;
  /** After the source DefaultAzureCredential uses (or after one that ends the chain): never tried by it. */
  notTried?: boolean;
}

export interface CredsReport {
  ok: boolean;
  used: SourceName | null;
  scope: string;
  sources: SourceResult[];
  /** Why DefaultAzureCredential gets no token, when it gets none. */
  summary: string;
}

export const DEFAULT_SOURCE_TIMEOUT_MS = 5_000;

export async function probeCredentials(
  ctx: CredsContext,
  deps: CredsDeps,
  signal: AbortSignal,
  onSource: (source: SourceResult) => void = () => {},
): Promise<CredsReport> {
  const cloud = CLOUDS[ctx.cloud];
  const scope = databaseScope(cloud);
  const timeoutMs = deps.timeoutMs ?? DEFAULT_SOURCE_TIMEOUT_MS;
  const settings: SourceSettings = {
    authorityHost: authorityHost(cloud, ctx.env),
    managedIdentityClientId: ctx.managedIdentityClientId,
    env: ctx.env,
    timeoutMs,
  };
  const included = chainSelection(ctx.env.AZURE_TOKEN_CREDENTIALS);
  // All at once, reported in chain order: the slowest source bounds the wait.
  const running = SOURCE_NAMES.map((name) =>
    included(name) ? probeOne(name, deps, settings, scope, signal) : Promise.resolve(excludedResult(name, ctx.env.AZURE_TOKEN_CREDENTIALS ?? '')),
  );
  const sources: SourceResult[] = [];
  for (const pending of running) {
    const source = await pending;
    sources.push(source);
    onSource(source);
  }
  let used: SourceName | null = null;
  let summary = '';
  for (const source of sources) {
    if (source.ok) {
      used = source.name;
      break;
    }
    if (source.stopsChain) {
      summary = `DefaultAzureCredential stops at ${source.name}, which is set up but failed; later sources are not tried`;
      break;
    }
  }
  if (!used && !summary) summary = 'no credential source yields a token';
  // DefaultAzureCredential stops at the first source that answers (or ends the chain): whatever
  // a later one would say is not a failure of the set-up.
  const last = sources.findIndex((s) => s.ok || s.stopsChain);
  const shown = sources.map((s, i): SourceResult => {
    if (last < 0 || i <= last || s.ok || s.excluded) return s;
    return { ...s, detail: `not tried: DefaultAzureCredential stops at ${sources[last]!.name}`, hint: '', notTried: true };
  });
  return { ok: used !== null, used, scope, sources: shown, summary };
}

async function probeOne(name: SourceName, deps: CredsDeps, settings: SourceSettings, scope: string, signal: AbortSignal): Promise<SourceResult> {
  try {
    const token = await withTimeLimit(settings.timeoutMs, signal, async (inner) => {
      const credential = deps.createSource(name, settings);
      return credential.getToken(scope, { abortSignal: inner });
    });
    if (!token) return failed(name, 'the source returned no token', settings.env, false, deps.advise);
    const claims = decodeTokenClaims(token.token);
    const detail = claims ? `token ${describeClaims(claims)}` : `token that expires ${new Date(token.expiresOnTimestamp).toISOString()}`;
    return { name, ok: true, detail, hint: '', ...(claims ? { claims } : {}), stopsChain: false, excluded: false };
  } catch (error) {
    if (error instanceof TimeLimitExceeded) {
      return failed(name, `no answer within ${formatSeconds(settings.timeoutMs)}`, settings.env, false, deps.advise);
    }
    const unavailable = error instanceof Error && (error.name === 'CredentialUnavailableError' || error.name === 'AuthenticationRequiredError');
    return failed(name, errorMessage(failureReason(error)), settings.env, !unavailable, deps.advise);
  }
}

/**
 * The first line, or for Entra's refusals its AADSTS description, which the first line leaves out.
 * MSAL wraps Entra's `error_description` as "invalid_client: Error(s): 7000215 - Timestamp: … -
 * Description: AADSTS7000215: … Trace ID: … Correlation ID: … Timestamp: … - Correlation ID: …";
 * what a person needs is the "AADSTS…: …" sentence without the trace trailer. MSAL's own errors
 * ("endpoints_resolution_error: …") also only show in the description.
 */
function failureReason(error: unknown): string {
  const description = (error as { errorResponse?: { errorDescription?: unknown } }).errorResponse?.errorDescription;
  if (typeof description === 'string') {
    const aadsts = /AADSTS\d+:[\s\S]*/.exec(description)?.[0];
    if (aadsts) return clip(aadsts.split(/\s+(?:-\s+)?(?:Trace ID|Correlation ID|Timestamp):/)[0]!.replace(/\s+/g, ' ').trim());
    const msalError = /^[a-z]+(?:_[a-z]+)+: .*/.exec(description.trim())?.[0];
    if (msalError) return clip(msalError.replace(/,$/, ''));
  }
  return describeCredentialFailure(error).reason || errorMessage(error);
}

function clip(text: string): string {
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

function failed(name: SourceName, reason: string, env: NodeJS.ProcessEnv, stopsChain: boolean, advise: SourceAdvisor | undefined): SourceResult {
  const advice = advise ? advise(name, reason, env) : { detail: reason, hint: '' };
  return { name, ok: false, detail: advice.detail, hint: advice.hint, stopsChain, excluded: false };
}

function excludedResult(name: SourceName, value: string): SourceResult {
  return { name, ok: false, detail: `left out of the chain by AZURE_TOKEN_CREDENTIALS=${value}`, hint: '', stopsChain: false, excluded: true };
}

/** Which sources AZURE_TOKEN_CREDENTIALS keeps in DefaultAzureCredential's chain. */
function chainSelection(value: string | undefined): (name: SourceName) => boolean {
  const wanted = value?.trim().toLowerCase();
  if (!wanted) return () => true;
  if (wanted === 'prod') return (name) => PROD_SOURCES.includes(name);
  if (wanted === 'dev') return (name) => !PROD_SOURCES.includes(name);
  return (name) => name.toLowerCase() === wanted;
}

/** The real classes, configured as DefaultAzureCredential configures them. */
export function createRealSource(name: SourceName, settings: SourceSettings): TokenCredential {
  return explainTransportFailures(realSource(name, settings));
}

function realSource(name: SourceName, settings: SourceSettings): TokenCredential {
  const { env, authorityHost, timeoutMs } = settings;
  const managedIdentityClientId = settings.managedIdentityClientId ?? env.AZURE_CLIENT_ID;
  // The one client of the process, so a failed request's reason can be told (credential-transport.ts).
  const httpClient = credentialHttpClient();
  switch (name) {
    case 'EnvironmentCredential':
      return new EnvironmentCredential({ authorityHost, httpClient });
    case 'WorkloadIdentityCredential':
      return new WorkloadIdentityCredential({
        authorityHost,
        httpClient,
        ...(env.AZURE_TENANT_ID ? { tenantId: env.AZURE_TENANT_ID } : {}),
        ...(managedIdentityClientId ? { clientId: managedIdentityClientId } : {}),
        ...(env.AZURE_FEDERATED_TOKEN_FILE ? { tokenFilePath: env.AZURE_FEDERATED_TOKEN_FILE } : {}),
      });
    case 'ManagedIdentityCredential':
      // No retries: a probe wants the first answer, and MSAL keeps the first managed identity
      // client of the process, so later DefaultAzureCredential calls fail fast too.
      // sendProbeRequest: as inside DefaultAzureCredential, IMDS gets a short probe first.
      const options: ManagedIdentityCredentialClientIdOptions & { sendProbeRequest: boolean } = {
        authorityHost,
        httpClient,
        retryOptions: { maxRetries: 0 },
        sendProbeRequest: true,
        ...(managedIdentityClientId ? { clientId: managedIdentityClientId } : {}),
      };
      return new ManagedIdentityCredential(options);
    case 'AzureCliCredential':
      return new AzureCliCredential({ processTimeoutInMs: timeoutMs });
    case 'AzurePowerShellCredential':
      return new AzurePowerShellCredential({ processTimeoutInMs: timeoutMs });
    case 'AzureDeveloperCliCredential':
      return new AzureDeveloperCliCredential({ processTimeoutInMs: timeoutMs });
  }
}

/** The real sources, unadvised; `azdb creds` and the doctor use REAL_CREDS_DEPS of credential-advice. */
export const REAL_SOURCES: CredsDeps = { createSource: createRealSource };
