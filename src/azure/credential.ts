/**
 * The credential azdb uses for everything Azure: `DefaultAzureCredential` from @azure/identity,
 * configured from azdb.yaml (user-assigned identity, cloud authority) and nothing home-made.
 */
import { AzureCliCredential, DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { CLOUDS, type CloudName } from './clouds.js';
import { credentialHttpClient, explainTransportFailures } from './credential-transport.js';
import { redactSecrets } from '../errors.js';

export interface CredentialSettings {
  cloud?: CloudName;
  managedIdentityClientId?: string;
}

/**
 * Retries of every request of the chain. DefaultAzureCredential gives its managed identity 5
 * retries from 800 ms (about 19 s before a refused identity endpoint fails); these end within
 * about 1.5 s. A source that fails is asked again at the next login, and the token cache refreshes
 * minutes before expiry, so a longer back-off here only holds the person or client waiting.
 */
export const CHAIN_RETRY_OPTIONS = { maxRetries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 1_000 } as const;

export function createCredential(settings: CredentialSettings = {}, env: NodeJS.ProcessEnv = process.env): TokenCredential {
  const cloud = CLOUDS[settings.cloud ?? 'AzureCloud'];
  return explainTransportFailures(
    new DefaultAzureCredential({
      // The standard variable wins, as it does for every Azure SDK.
      authorityHost: env.AZURE_AUTHORITY_HOST ?? cloud.authorityHost,
      ...(settings.managedIdentityClientId ? { managedIdentityClientId: settings.managedIdentityClientId } : {}),
      retryOptions: CHAIN_RETRY_OPTIONS,
      httpClient: credentialHttpClient(),
    }),
  );
}

/** The person's own `az login`, for work done as them (setup runs the database-user SQL as the server's Entra admin). */
export function createAzureCliCredential(): TokenCredential {
  return new AzureCliCredential({ processTimeoutInMs: 20_000 });
}

const SOURCE_PATTERN = /\b((?:Environment|WorkloadIdentity|ManagedIdentity|AzureCli|AzureDeveloperCli|AzurePowerShell|ClientSecret|ClientCertificate|Interactive\w*|DeviceCode|VisualStudioCode)Credential)\b/g;

/**
 * Messages of a source that is not set up on this machine at all (no variables, no CLI, no
 * managed identity endpoint), as opposed to one that is set up and failed.
 */
const NOT_SET_UP = /No underlying credential could be used|could not be found|couldn't be found|not installed|Unable to execute|is not available|not fully configured|are not set|is not set/i;

/**
 * Which credential source failed and why, from an @azure/identity error. The chain's aggregate
 * error lists every source, and @azure/identity reports even a managed identity endpoint that
 * answers 500 as "unavailable"; the source to fix is the first one that is set up on this
 * machine and still failed. When none is set up, that is the thing to say.
 */
export function describeCredentialFailure(error: unknown): { source: string; reason: string } {
  const errors: unknown[] = isAggregate(error) ? error.errors : [error];
  const setUp = errors.filter((e) => !NOT_SET_UP.test(messageOf(e)));
  if (setUp.length === 0 && errors.length > 1) {
    return {
      source: 'DefaultAzureCredential',
      reason: 'no credential source is set up (environment variables, workload identity, managed identity, Azure CLI login, Azure PowerShell, Azure Developer CLI)',
    };
  }
  const relevant = setUp[0] ?? errors[0] ?? error;
  const message = messageOf(relevant);
  const sources = [...message.matchAll(SOURCE_PATTERN)].map((m) => m[1]);
  const source = sources[0] ?? sourceFromMessage(message) ?? (error instanceof Error && error.name !== 'Error' ? error.name : 'DefaultAzureCredential');
  // Redacted here, once: the reason reaches logs, metrics labels and /readyz, not only thrown errors.
  return { source, reason: redactSecrets(firstLine(message)) };
}

/** Sources whose messages say who they are in words rather than by class name. */
function sourceFromMessage(message: string): string | undefined {
  if (/Azure Developer CLI/i.test(message)) return 'AzureDeveloperCliCredential';
  if (/Azure CLI|az login/i.test(message)) return 'AzureCliCredential';
  if (/PowerShell/i.test(message)) return 'AzurePowerShellCredential';
  if (/Visual Studio Code/i.test(message)) return 'VisualStudioCodeCredential';
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isAggregate(error: unknown): error is { errors: unknown[] } {
  return typeof error === 'object' && error !== null && Array.isArray((error as { errors?: unknown }).errors);
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim().length > 0) ?? text;
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
