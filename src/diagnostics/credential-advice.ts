/**
 * Why one credential source gave no token, in words a person can act on: which variables are
 * missing, which command logs in, what an identity endpoint's failure means. Pure.
 */
import { createRealSource, type CredsDeps, type SourceName } from '../azure/credential-sources.js';

export interface Advice {
  detail: string;
  hint: string;
}

const NOT_FOUND = /could not be found|couldn't be found|not installed|Unable to execute|ENOENT|command not found/i;

export function sourceAdvice(name: SourceName, reason: string, env: NodeJS.ProcessEnv): Advice {
  switch (name) {
    case 'EnvironmentCredential':
      return environmentAdvice(reason, env);
    case 'WorkloadIdentityCredential':
      return workloadAdvice(reason, env);
    case 'ManagedIdentityCredential':
      return managedIdentityAdvice(reason, env);
    case 'AzureCliCredential':
      if (NOT_FOUND.test(reason)) return { detail: 'the Azure CLI (az) is not installed', hint: 'install it (https://aka.ms/azure-cli), then run `az login`' };
      if (/az login|not logged in|No subscription/i.test(reason)) return { detail: 'the Azure CLI is not logged in', hint: 'run `az login` (on a server: `az login --identity` or `az login --service-principal`)' };
      return { detail: reason, hint: 'run `az account get-access-token --resource https://ossrdbms-aad.database.windows.net` to see the Azure CLI\'s own error; `az login` again if it is expired' };
    case 'AzurePowerShellCredential':
      if (NOT_FOUND.test(reason)) return { detail: 'PowerShell (pwsh) with the Az.Accounts module is not installed', hint: 'install PowerShell and `Install-Module Az.Accounts`, then `Connect-AzAccount` (or use another source)' };
      return { detail: reason, hint: 'run `Connect-AzAccount` in PowerShell' };
    case 'AzureDeveloperCliCredential':
      if (NOT_FOUND.test(reason)) return { detail: 'the Azure Developer CLI (azd) is not installed', hint: 'install it (https://aka.ms/azd), then run `azd auth login` (or use another source)' };
      if (/azd auth login|not logged in/i.test(reason)) return { detail: 'the Azure Developer CLI is not logged in', hint: 'run `azd auth login`' };
      return { detail: reason, hint: 'run `azd auth login`' };
  }
}

function missing(env: NodeJS.ProcessEnv, names: string[]): string[] {
  return names.filter((n) => !env[n]);
}

function list(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

function environmentAdvice(reason: string, env: NodeJS.ProcessEnv): Advice {
  const hasSecretKind = Boolean(env.AZURE_CLIENT_SECRET || env.AZURE_CLIENT_CERTIFICATE_PATH || (env.AZURE_USERNAME && env.AZURE_PASSWORD));
  const base = missing(env, ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID']);
  const absent = [...base, ...(hasSecretKind ? [] : ['AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH)'])];
  if (absent.length > 0 && /unavailable|not set|No underlying credential/i.test(reason)) {
    const anySet = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH'].some((n) => env[n]);
    return {
      detail: anySet ? `incomplete: ${list(absent)} ${absent.length === 1 ? 'is' : 'are'} not set` : `not set up: ${list(absent)} are not set`,
      hint: anySet
        ? `set ${list(absent)} for the service principal`
        : 'for a service principal, set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH); otherwise use another source',
    };
  }
  if (/AADSTS7000215|AADSTS7000222|invalid client secret|secret.*expired/i.test(reason)) {
    return {
      detail: `the service principal's secret was refused: ${reason}`,
      hint: `AZURE_CLIENT_SECRET is wrong or expired: create a new one (\`az ad app credential reset --id ${env.AZURE_CLIENT_ID ?? '<AZURE_CLIENT_ID>'}\`) and set AZURE_CLIENT_SECRET; DefaultAzureCredential stops here, so unset the variables to fall through to the next source`,
    };
  }
  if (/AADSTS700016|application .* was not found/i.test(reason)) {
    return { detail: `no such application in the tenant: ${reason}`, hint: 'check AZURE_CLIENT_ID (the app registration\'s Application (client) ID) and AZURE_TENANT_ID' };
  }
  if (/AADSTS90002|tenant .* not found/i.test(reason)) {
    return { detail: `no such tenant: ${reason}`, hint: 'check AZURE_TENANT_ID (and AZURE_AUTHORITY_HOST for sovereign clouds)' };
  }
  if (/endpoints_resolution_error|untrusted_authority|not a trusted authority/i.test(reason)) {
    // MSAL knows the endpoints of Microsoft's clouds; any other host must pass Entra's instance
    // discovery (login.microsoftonline.com), which refuses hosts it does not know.
    const host = env.AZURE_AUTHORITY_HOST ?? 'https://login.microsoftonline.com';
    return {
      detail: `Entra ID does not accept AZURE_AUTHORITY_HOST=${host} as an authority: MSAL has no endpoints for that host and Entra's instance discovery (login.microsoftonline.com) did not vouch for it, or could not be reached (${reason})`,
      hint: "set AZURE_AUTHORITY_HOST to your cloud's Entra authority (https://login.microsoftonline.com, https://login.microsoftonline.us, https://login.chinacloudapi.cn) or unset it; if it is one of those, check the network and proxy (HTTPS_PROXY)",
    };
  }
  if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|network|no answer within/i.test(reason)) {
    return { detail: `Entra ID (${env.AZURE_AUTHORITY_HOST ?? 'login.microsoftonline.com'}) cannot be reached: ${reason}`, hint: 'check the network, proxy (HTTPS_PROXY) and AZURE_AUTHORITY_HOST' };
  }
  return { detail: reason, hint: 'check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH' };
}

function workloadAdvice(reason: string, env: NodeJS.ProcessEnv): Advice {
  const absent = missing(env, ['AZURE_FEDERATED_TOKEN_FILE', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID']);
  if (absent.length > 0 && !/AADSTS/.test(reason)) {
    return {
      detail: `not set up: ${list(absent)} ${absent.length === 1 ? 'is' : 'are'} not set`,
      hint: env.AZURE_FEDERATED_TOKEN_FILE ? `set ${list(absent)}` : 'only on Kubernetes with Azure workload identity (the webhook sets these variables); otherwise use another source',
    };
  }
  return { detail: reason, hint: 'check the federated credential of the app (issuer and subject must match the service account) and AZURE_FEDERATED_TOKEN_FILE' };
}

function managedIdentityAdvice(reason: string, env: NodeJS.ProcessEnv): Advice {
  const endpoint = env.IDENTITY_ENDPOINT ?? env.MSI_ENDPOINT;
  const where = endpoint ? `the identity endpoint ${endpoint}` : 'the instance metadata service (IMDS, 169.254.169.254)';
  if (!endpoint && /IMDS|not available|Network unreachable|ENETUNREACH|EHOSTUNREACH/i.test(reason)) {
    return {
      detail: 'no managed identity here: IMDS did not answer (not an Azure VM, or IMDS is blocked)',
      hint: 'on Azure, enable a managed identity on the VM / App Service / container; elsewhere use another source',
    };
  }
  if (/Network unreachable|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|socket hang up|no answer within/i.test(reason)) {
    return {
      detail: `${where} is unreachable: ${reason}`,
      hint: 'check IDENTITY_ENDPOINT / IDENTITY_HEADER are the ones the platform set and that the identity is enabled on this resource',
    };
  }
  if (/Unable to load the proper Managed Identity|not assigned|identity not found/i.test(reason)) {
    return {
      detail: `${where} does not know the requested identity: ${reason}`,
      hint: 'the user-assigned identity named by azure.managed_identity_client_id (or AZURE_CLIENT_ID) is not assigned to this resource: assign it, or fix the client id',
    };
  }
  if (/Authentication failed|500|unexpected error|Internal Server Error/i.test(reason)) {
    return {
      detail: `${where} answered with an error: ${reason}`,
      hint: 'the platform\'s identity service failed (HTTP 500 from the endpoint); retry, and check the identity is assigned to this resource',
    };
  }
  return { detail: reason, hint: `check the managed identity of this resource (${where})` };
}

/** The real credential sources, with their failures explained. */
export const REAL_CREDS_DEPS: CredsDeps = { createSource: createRealSource, advise: sourceAdvice };
