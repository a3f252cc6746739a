/**
 * `azdb demo`: an emulated Azure (started by whoever provides {@link StartDemoAzure}: the entry
 * point plugs in src/emulator; production code never imports it) plus the ordinary config and
 * environment that point azdb at it, written to the demo's state folder.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { renderConfig } from '../config/generate.js';
import type { ConfigInput } from '../config/schema.js';
import { UserError } from '../errors.js';
import { isAlive } from '../process/alive.js';

export interface DemoServer {
  name: string;
  protocol: 'postgres' | 'mysql';
  kind: 'flexible' | 'single';
  fqdn: string;
  host: string;
  port: number;
  /** Login user of the demo identity (`role@server` on single servers). */
  loginUser: string;
  databases: string[];
}

/** A running emulated Azure, as the demo needs it. */
export interface DemoAzure {
  caFile: string;
  armEndpoint: string;
  servers: DemoServer[];
  /** False when MariaDB is not installed: no MySQL servers. */
  hasMySql: boolean;
  /** The database user of the demo's managed identity. */
  dbUser: string;
  /** The managed-identity endpoint's variables (IDENTITY_ENDPOINT, IDENTITY_HEADER). */
  identityEnv(): Record<string, string>;
  stop(): Promise<void>;
}

export type StartDemoAzure = (options: { dir: string; onProgress: (message: string) => void; signal: AbortSignal }) => Promise<DemoAzure>;

const OWNER_FILE = 'demo.pid';

/**
 * Makes this process the demo's owner of `dir`, or refuses when another live azdb holds it: a
 * second demo must not stop the first one's servers or rewrite its config and env file. Returns
 * the release, which removes the claim only while it is still this process's.
 */
export async function claimDemoFolder(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, OWNER_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      return async () => {
        if ((await ownerOf(file)) === process.pid) await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await ownerOf(file);
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
        throw new UserError(`a demo is already running (pid ${owner}) in ${dir}`, {
          hint: `Use it from this shell: source ${join(dir, 'env.sh')}; or stop it first (Ctrl+C where it runs, or kill ${owner}).`,
        });
      }
      // Left by a demo that is gone: take it over.
      await rm(file, { force: true });
    }
  }
  throw new UserError(`cannot claim ${dir} for the demo: another start is claiming it at the same time`, { hint: 'Run `azdb demo` once.' });
}

async function ownerOf(file: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export interface DemoFiles {
  configFile: string;
  envFile: string;
}

/** Writes the demo's azdb.yaml and env.sh (0600: the identity header is the emulator's secret). */
export async function writeDemoFiles(azure: DemoAzure, dir: string): Promise<DemoFiles> {
  const configFile = join(dir, 'azdb.yaml');
  const envFile = join(dir, 'env.sh');
  await writeFile(configFile, demoConfig(azure, dir));
  await writeFile(envFile, envScript(configFile, dirname(dir), { ...azure.identityEnv(), NODE_EXTRA_CA_CERTS: azure.caFile }), { mode: 0o600 });
  await chmod(envFile, 0o600);
  return { configFile, envFile };
}

/** The demo database whose tunnels pool their server connections (README "Pooling"). */
export const DEMO_POOLED_DATABASE = 'inventory';

function demoConfig(azure: DemoAzure, dir: string): string {
  const config: ConfigInput = {
    version: 'v1',
    azure: { cloud: 'AzureCloud', resource_manager_endpoint: azure.armEndpoint },
    databases: azure.servers.map((s) => ({
      name: s.name,
      protocol: s.protocol,
      uri: `${s.host}:${s.port}`,
      azure: { server_kind: s.kind, server_name: s.name },
      tls: { mode: 'verify-full', ca_file: azure.caFile, server_name: s.fqdn },
      labels: { env: s.name === 'inventory' ? 'staging' : 'prod', emulated: 'true' },
      // One pooled database, so the picker's pools view (`o`) has something to show.
      ...(s.name === DEMO_POOLED_DATABASE ? { pool: { mode: 'session' as const, max_server_connections: 5 } } : {}),
    })),
    roles: [
      {
        version: 'v7',
        kind: 'role',
        metadata: { name: 'demo-access' },
        spec: { allow: { db_labels: { '*': '*' }, db_users: [azure.dbUser], db_names: ['*'] }, deny: {} },
      },
    ],
    broker: { roles: ['demo-access'], audit: { path: join(dir, 'audit.log'), queries: true } },
  };
  return renderConfig(config, { header: 'Written by `azdb demo` for the emulated Azure it started; rewritten on every start.' });
}

/** AZDB_STATE_DIR too: `azdb setup` and `db logout` in that shell find the demo's state. */
function envScript(configFile: string, stateDir: string, identityEnv: Record<string, string>): string {
  const lines = Object.entries({ AZDB_CONFIG: configFile, AZDB_STATE_DIR: stateDir, ...identityEnv }).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`);
  return `# Source this to use the running azdb demo from another shell.\n${lines.join('\n')}\n`;
}

