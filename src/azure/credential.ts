/**
 * The credential azdb uses for everything Azure: `DefaultAzureCredential` from @azure/identity,
 * configured from azdb.yaml (user-assigned identity, cloud authority) and nothing home-made.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { CLOUDS, type CloudName } from './clouds.js';

export interface CredentialSettings {
  cloud?: CloudName;
  managedIdentityClientId?: string;
}

export function createCredential(settings: CredentialSettings = {}, env: NodeJS.ProcessEnv = process.env): TokenCredential {
  const cloud = CLOUDS[settings.cloud ?? 'AzureCloud'];
  return new DefaultAzureCredential({
    // The standard variable wins, as it does for every Azure SDK.
    authorityHost: env.AZURE_AUTHORITY_HOST ?? cloud.authorityHost,
    ...(settings.managedIdentityClientId ? { managedIdentityClientId: settings.managedIdentityClientId } : {}),
  });
}

const SOURCE_PATTERN = /\b((?:Environment|WorkloadIdentity|ManagedIdentity|AzureCli|AzureDeveloperCli|AzurePowerShell|ClientSecret|ClientCertificate|Interactive\w*|DeviceCode|VisualStudioCode)Credential)\b/g;

/**
 * Which credential source failed and why, from an @azure/identity error. The chain's aggregate
 * error lists every source; the last one that was actually tried (not "unavailable") is the
 * one to fix.
 */
export function describeCredentialFailure(error: unknown): { source: string; reason: string } {
  const errors: unknown[] = isAggregate(error) ? error.errors : [error];
  const tried = errors.filter((e) => !(e instanceof Error && e.name === 'CredentialUnavailableError'));
  const relevant = (tried.length > 0 ? tried : errors).at(-1) ?? error;
  const message = relevant instanceof Error ? relevant.message : String(relevant);
  const sources = [...message.matchAll(SOURCE_PATTERN)].map((m) => m[1]);
  const source = sources[0] ?? (error instanceof Error && error.name !== 'Error' ? error.name : 'DefaultAzureCredential');
  return { source, reason: firstLine(message) };
}

function isAggregate(error: unknown): error is { errors: unknown[] } {
  return typeof error === 'object' && error !== null && Array.isArray((error as { errors?: unknown }).errors);
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim().length > 0) ?? text;
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
