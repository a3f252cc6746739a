import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import type { UpstreamTarget } from '../../src/broker/target.js';

/** The upstream target of one emulated server, verified against the emulator's CA. */
export function emulatorTarget(azure: EmulatedAzure, name: string, overrides: Partial<UpstreamTarget> = {}): UpstreamTarget {
  const server = azure.servers.find((s) => s.name === name);
  if (!server) throw new Error(`no emulated server "${name}" (have: ${azure.servers.map((s) => s.name).join(', ')})`);
  return {
    name,
    protocol: server.protocol,
    host: server.host,
    port: server.port,
    tls: { mode: 'verify-full', ca: azure.caPem, caSource: 'the emulator CA', serverName: server.fqdn },
    serverKind: server.kind,
    serverName: server.name,
    ...overrides,
  };
}
