/** Which cloud and identity the credential probe uses: the config's, when it can be read. */
import type { CloudName } from '../azure/clouds.js';
import { loadConfig } from '../config/load.js';
import { errorMessage } from '../errors.js';
import type { CoreContext } from './context.js';
import { configPath } from './runtime.js';

export interface CredentialSettings {
  cloud: CloudName;
  managedIdentityClientId?: string;
}

/** Cloud and user-assigned identity from the config when it can be read; AzureCloud otherwise (said on the log). */
export async function credentialSettings(ctx: CoreContext): Promise<CredentialSettings> {
  try {
    const config = await loadConfig(configPath(ctx));
    return {
      cloud: config.azure.cloud,
      ...(config.azure.managed_identity_client_id ? { managedIdentityClientId: config.azure.managed_identity_client_id } : {}),
    };
  } catch (error) {
    ctx.log.info(`note: config not used (${errorMessage(error).split('\n')[0]}); probing for AzureCloud`);
    return { cloud: 'AzureCloud' };
  }
}
