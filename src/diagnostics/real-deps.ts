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

/** The client program on PATH: psql for PostgreSQL; mariadb, else mysql, for MySQL. */
export async function clientProgram(env: NodeJS.ProcessEnv, protocol: 'postgres' | 'mysql'): Promise<{ name: string; path: string } | undefined> {
  for (const name of protocol === 'postgres' ? ['psql'] : ['mariadb', 'mysql']) {
    const path = await which(name, env);
    if (path) return { name, path };
  }
  return undefined;
}

/** {@link clientProgram}, with the version it prints. */
export async function findClient(env: NodeJS.ProcessEnv, protocol: 'postgres' | 'mysql', signal: AbortSignal): Promise<ClientProgram | undefined> {
  const program = await clientProgram(env, protocol);
  if (!program) return undefined;
  const result = await run(program.path, ['--version'], { timeoutMs: 2_000, signal });
  const version = (result.stdout || result.stderr).split('\n')[0]!.trim();
  return { ...program, version: version.startsWith(program.path) ? version.slice(program.path.length).trim() : version };
}
