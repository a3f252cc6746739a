/**
 * The doctor's real dependencies (DNS, TCP, TLS, the broker, the local client programs), for the
 * CLI and the TUI's doctor screen; they supply how to load the config and probe credentials.
 */
import { resolveTarget } from '../broker/resolve-target.js';
import { run, which } from '../process/exec.js';
import { openSession } from './db-client.js';
import type { ClientProgram, DoctorDeps } from './doctor-types.js';
import { lookupHost, tcpConnect } from './net.js';
import { probeTls } from './tls-probe.js';

export function realDoctorDeps(parts: Pick<DoctorDeps, 'load' | 'probeCredentials'>, env: NodeJS.ProcessEnv = process.env): DoctorDeps {
  return {
    ...parts,
    resolveTarget,
    lookup: lookupHost,
    connect: tcpConnect,
    probeTls,
    openSession,
    findClient: (protocol, signal) => findClient(env, protocol, signal),
    now: Date.now,
  };
}

/** psql for PostgreSQL; mariadb, else mysql, for MySQL; with the version it prints. */
export async function findClient(env: NodeJS.ProcessEnv, protocol: 'postgres' | 'mysql', signal: AbortSignal): Promise<ClientProgram | undefined> {
  const names = protocol === 'postgres' ? ['psql'] : ['mariadb', 'mysql'];
  for (const program of names) {
    const path = await which(program, env);
    if (!path) continue;
    const result = await run(path, ['--version'], { timeoutMs: 2_000, signal });
    const version = (result.stdout || result.stderr).split('\n')[0]!.trim();
    return { name: program, path, version: version.startsWith(path) ? version.slice(path.length).trim() : version };
  }
  return undefined;
}
