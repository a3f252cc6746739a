import { AggregateAuthenticationError, CredentialUnavailableError } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { describeCredentialFailure } from '../../src/azure/credential-failure.js';

// Messages as @azure/identity 4.13 words them.
const ENV_ABSENT = 'EnvironmentCredential is unavailable. No underlying credential could be used. To troubleshoot, visit https://aka.ms/azsdk/js/identity/environmentcredential/troubleshoot.';
const MI_500 = 'ManagedIdentityCredential: Authentication failed. Message : Error(s): Not Available - Description: An unexpected error occured while fetching the AAD Token.';
const IMDS_ABSENT = 'ManagedIdentityCredential: Attempted to use the IMDS endpoint, but it is not available.';
const VSCODE_ABSENT = 'Visual Studio Code Authentication is not available. Ensure you have have Azure Resources Extension installed in VS Code.';
const CLI_ABSENT = "Azure CLI could not be found. Please visit https://aka.ms/azure-cli for installation instructions and then, once installed, authenticate to your Azure account using 'az login'.";
const CLI_LOGGED_OUT = "Please run 'az login' from a command prompt to authenticate before using this credential.";
const PWSH_ABSENT = 'Error: Unable to execute PowerShell. Ensure that it is installed in your system.';
const AZD_ABSENT = "Azure Developer CLI couldn't be found. To mitigate this issue, see the troubleshooting guidelines.";

function chain(...messages: string[]): AggregateAuthenticationError {
  return new AggregateAuthenticationError(messages.map((m) => new CredentialUnavailableError(m)), 'DefaultAzureCredential failed');
}

describe('describeCredentialFailure', () => {
  it('names the managed identity when it is the one source set up, though the chain ends elsewhere', () => {
    const failure = describeCredentialFailure(chain(ENV_ABSENT, MI_500, VSCODE_ABSENT, CLI_ABSENT, PWSH_ABSENT, AZD_ABSENT));
    expect(failure.source).toBe('ManagedIdentityCredential');
    expect(failure.reason).toContain('unexpected error occured while fetching the AAD Token');
  });

  it('names the Azure CLI when it is installed but logged out', () => {
    const failure = describeCredentialFailure(chain(ENV_ABSENT, IMDS_ABSENT, VSCODE_ABSENT, CLI_LOGGED_OUT, PWSH_ABSENT, AZD_ABSENT));
    expect(failure).toEqual({ source: 'AzureCliCredential', reason: CLI_LOGGED_OUT });
  });

  it('says that no source is set up when none is', () => {
    const failure = describeCredentialFailure(chain(ENV_ABSENT, IMDS_ABSENT, VSCODE_ABSENT, CLI_ABSENT, PWSH_ABSENT, AZD_ABSENT));
    expect(failure.source).toBe('DefaultAzureCredential');
    expect(failure.reason).toMatch(/no credential source is set up/);
  });

  it('redacts a token or secret a source puts in its message (the reason reaches logs and /readyz)', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    const failure = describeCredentialFailure(new Error(`ManagedIdentityCredential: bad response ${jwt} client_secret=hunter22`));
    expect(failure.source).toBe('ManagedIdentityCredential');
    expect(failure.reason).not.toContain(jwt);
    expect(failure.reason).not.toContain('hunter22');
  });

  it('keeps only the first line of a long message', () => {
    const failure = describeCredentialFailure(new Error('ClientSecretCredential: AADSTS7000215: Invalid client secret provided.\nTrace ID: 1\nCorrelation ID: 2'));
    expect(failure).toEqual({ source: 'ClientSecretCredential', reason: 'ClientSecretCredential: AADSTS7000215: Invalid client secret provided.' });
  });
});
