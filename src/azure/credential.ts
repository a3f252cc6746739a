/**
 * The credential azdb uses for everything Azure: `DefaultAzureCredential` from @azure/identity,
 * configured from azdb.yaml (user-assigned identity, cloud authority) and nothing home-made.
 */
import { AzureCliCredential, DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { CLOUDS, authorityHost, type CloudName } from './clouds.js';
import { credentialHttpClient, explainTransportFailures } from './credential-transport.js';

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
      authorityHost: authorityHost(cloud, env),
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
