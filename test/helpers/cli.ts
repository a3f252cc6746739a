/**
 * The built CLI as a user runs it: `bin/azdb.js` as a child process, with a config that points at
 * the emulated Azure.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { renderConfig } from '../../src/config/generate.js';
import type { BrokerInput, DatabaseInput, LabelMatcher } from '../../src/config/schema.js';
import type { EmulatedAzure, EmulatedServerInfo } from '../../src/emulator/emulated-azure.js';
import { waitFor } from './wait.js';

export const BIN = resolve(import.meta.dirname, '../../bin/azdb.js');

/** Throws unless dist/ holds the built CLI (with `entry`): the e2e tests run it, not src/. */
export function requireBuild(entry = 'cli/main.js'): void {
  if (!existsSync(BIN) || !existsSync(resolve(import.meta.dirname, '../../dist', entry))) {
    throw new Error('dist/ is missing or stale: run `npm run build` (npm test does it)');
  }
}

/** One emulated server as a config database, verified against the emulator's CA, labelled env=test. */
export function emulatedDatabase(azure: EmulatedAzure, server: EmulatedServerInfo): DatabaseInput {
  return {
    name: server.name,
    protocol: server.protocol,
    uri: `${server.host}:${server.port}`,
    azure: { server_kind: server.kind, server_name: server.name },
    tls: { mode: 'verify-full', ca_file: azure.caFile, server_name: server.fqdn },
    labels: { env: 'test' },
  };
}

export interface EmulatedConfigOptions {
  /** @default every emulated server */
  databases?: DatabaseInput[];
  /** The one role, which the broker uses. */
  role: string;
  allow: { db_labels?: LabelMatcher; db_users: string[]; db_names: string[] };
  /** Broker settings besides its roles. */
  broker?: Omit<BrokerInput, 'roles'>;
}

/** Writes a config for the emulated Azure: its databases and one role that allows `allow`. */
export function writeEmulatedConfig(file: string, azure: EmulatedAzure, options: EmulatedConfigOptions): Promise<void> {
  return writeFile(
    file,
    renderConfig({
      version: 'v1',
      databases: options.databases ?? azure.servers.map((s) => emulatedDatabase(azure, s)),
      roles: [
        {
          version: 'v7',
          kind: 'role',
          metadata: { name: options.role },
          spec: { allow: { db_labels: options.allow.db_labels ?? { '*': '*' }, db_users: options.allow.db_users, db_names: options.allow.db_names }, deny: {} },
        },
      ],
      broker: { roles: [options.role], ...options.broker },
    }),
  );
}

/** The environment of a CLI run in `work`: the identity, azdb.yaml and state under `work`, no colour. */
export function cliEnv(identityEnv: Record<string, string>, work: string): Record<string, string> {
  return { ...identityEnv, AZDB_CONFIG: join(work, 'azdb.yaml'), AZDB_STATE_DIR: join(work, 'state'), NO_COLOR: '1' };
}

/** Runs `azdb args` to its end; a failing exit is a result, not a rejection. */
export function runAzdb(args: string[], env: Record<string, string>) {
  return execa('node', [BIN, ...args], { env, reject: false });
}

/** Starts `azdb proxy db ... --json` and resolves with its one JSON line. */
export async function startProxy(args: string[], env: Record<string, string>, timeoutMs?: number): Promise<{ child: ResultPromise; info: Record<string, unknown>; stdout: () => string }> {
  const child = execa('node', [BIN, 'proxy', 'db', ...args, '--json'], { env, reject: false });
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const line = await waitFor(() => stdout.includes('\n') && stdout.split('\n')[0], 'the JSON line of proxy db', timeoutMs);
  return { child, info: JSON.parse(line) as Record<string, unknown>, stdout: () => stdout };
}
