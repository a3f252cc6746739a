/** Setup step 4: a config setup wrote itself is not an "already exists" question when setup resumes. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiscoveredDatabase } from '../../src/azure/discovery.js';
import type { TokenCache } from '../../src/azure/token-cache.js';
import type { SetupAnswers } from '../../src/core/api/setup.js';
import type { SetupContext } from '../../src/core/setup/context.js';
import { writeConfig } from '../../src/core/setup/steps/config.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-setup-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ANSWERS: SetupAnswers = { types: 'postgres', regions: 'eastus', subscriptions: '*', dbUser: 'app', adminUser: '', servers: '' };

function context(): SetupContext {
  const listing = JSON.stringify([ANSWERS.types, ANSWERS.regions, ANSWERS.subscriptions]);
  return {
    env: {},
    configFile: join(dir, 'azdb.yaml'),
    artifactDir: join(dir, 'setup'),
    basis: { cloud: 'AzureCloud', knownDatabases: [] },
    tokens: {} as TokenCache,
    scope: 'https://ossrdbms-aad.database.windows.net/.default',
    credsDeps: { createSource: () => ({ getToken: async () => null }) },
    adminTokenSources: async () => [],
    // Step 2's listing, as the wizard has it when it reaches step 4.
    found: { servers: { key: listing, list: [{ name: 'orders', protocol: 'postgres' } as DiscoveredDatabase] } },
  };
}

describe('setup step 4', () => {
  it('writes the config, and on resume finds it as it wrote it; a changed file is asked about', async () => {
    const signal = new AbortController().signal;
    const first = await writeConfig(context(), ANSWERS, { overwrite: false }, signal);
    expect(first).toMatchObject({ status: 'pass', detail: expect.stringContaining(`wrote ${join(dir, 'azdb.yaml')}`) });
    const resumed = await writeConfig(context(), ANSWERS, { overwrite: false }, signal);
    expect(resumed).toMatchObject({ status: 'pass', detail: expect.stringContaining('is as setup wrote it') });
    expect(resumed.exists).toBeUndefined();
    await writeFile(join(dir, 'azdb.yaml'), 'version: v1\n# edited by hand\n');
    const edited = await writeConfig(context(), ANSWERS, { overwrite: false }, signal);
    expect(edited).toMatchObject({ status: 'fail', exists: true, detail: `${join(dir, 'azdb.yaml')} already exists` });
  });
});
