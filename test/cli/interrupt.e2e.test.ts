/**
 * Ctrl+C and SIGTERM while azdb waits for an Entra token that does not come (the identity endpoint
 * takes the request and never answers): the built CLI as a child process, the emulated Azure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { BIN, cliEnv, emulatedDatabase, requireBuild, writeEmulatedConfig } from '../helpers/cli.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';

const psql = await findTool('psql');

let azure: EmulatedAzure & { dir: string };
let env: Record<string, string>;

beforeAll(async () => {
  requireBuild();
  azure = await startTestAzure();
  const work = await mkdtemp(join(tmpdir(), 'azdb-interrupt-'));
  env = cliEnv(azure.identity.env(), work);
  await writeEmulatedConfig(env.AZDB_CONFIG!, azure, {
    databases: azure.servers.filter((s) => s.name === 'orders').map((s) => emulatedDatabase(azure, s)),
    role: 'dev',
    allow: { db_users: [DEMO_IDENTITY.role], db_names: ['*'] },
  });
  await azure.identity.setMode('hang');
});

afterAll(async () => {
  await azure?.stop();
});

/** Starts `azdb args`, waits until it says it is getting a token and the endpoint holds its request, then sends `signal`. */
async function interruptWhileWaiting(args: string[], signal: NodeJS.Signals) {
  const heldBefore = azure.identity.held;
  const child = execa('node', [BIN, ...args], { env, reject: false, stdin: 'ignore' });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(() => azure.identity.held > heldBefore && stderr.includes('Getting an Entra token for orders (Ctrl+C stops)...'), 'azdb to wait for its token', 30_000);
  const sent = Date.now();
  child.kill(signal);
  const result = await child;
  return { result, stderr, ms: Date.now() - sent };
}

describe('waiting for a token that does not come', () => {
  it.skipIf(!psql)('`azdb db connect`: Ctrl+C stops it at once with exit 130, without starting psql or blaming it', async () => {
    const { result, stderr, ms } = await interruptWhileWaiting(['db', 'connect', 'orders', '--db-name', 'orders'], 'SIGINT');
    expect(result.exitCode).toBe(130);
    expect(stderr).not.toMatch(/could not be started|error:/);
    // Not the 30 s of azdb's own deadline, nor the identity request's.
    expect(ms).toBeLessThan(10_000);
  });

  it('`azdb proxy db`: the first SIGTERM stops it at once with exit 143', async () => {
    const { result, stderr, ms } = await interruptWhileWaiting(['proxy', 'db', 'orders', '--db-name', 'orders', '--json'], 'SIGTERM');
    expect(result.exitCode).toBe(143);
    expect(result.stdout).toBe('');
    expect(stderr).not.toMatch(/error:/);
    expect(ms).toBeLessThan(10_000);
  });
});
