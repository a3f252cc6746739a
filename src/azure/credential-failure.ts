/**
 * Which credential source failed and why, read from an @azure/identity error's text alone. Apart
 * from credential.ts so that the token cache, which every broker process loads, does not load
 * @azure/identity (about 10 MiB of resident memory) where no credential of its own is used.
 */
import { redactSecrets } from '../errors.js';

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
