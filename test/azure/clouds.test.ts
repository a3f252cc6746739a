import { describe, expect, it } from 'vitest';
import { CLOUDS, authorityHost } from '../../src/azure/clouds.js';

describe('authorityHost', () => {
  it("is the cloud's without AZURE_AUTHORITY_HOST", () => {
    expect(authorityHost(CLOUDS.AzureCloud, {})).toBe('https://login.microsoftonline.com');
    expect(authorityHost(CLOUDS.AzureUSGovernment, {})).toBe('https://login.microsoftonline.us');
  });

  it('is AZURE_AUTHORITY_HOST when set, as every Azure SDK reads it', () => {
    expect(authorityHost(CLOUDS.AzureCloud, { AZURE_AUTHORITY_HOST: 'https://127.0.0.1:8443' })).toBe('https://127.0.0.1:8443');
  });

  it('takes a set but empty AZURE_AUTHORITY_HOST as set, as @azure/identity does', () => {
    expect(authorityHost(CLOUDS.AzureCloud, { AZURE_AUTHORITY_HOST: '' })).toBe('');
  });
});
