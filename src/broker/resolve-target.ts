/**
 * From a configured database to an upstream target: host, port, and how to verify TLS.
 */
import { readFile } from 'node:fs/promises';
import type { DatabaseConfig } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { UpstreamTarget } from './target.js';

export async function resolveTarget(db: DatabaseConfig): Promise<UpstreamTarget> {
  let ca: string | undefined;
  if (db.tls.ca_file) {
    try {
      ca = await readFile(db.tls.ca_file, 'utf8');
    } catch (error) {
      throw new UserError(`cannot read tls.ca_file of "${db.name}": ${(error as NodeJS.ErrnoException).code ?? String(error)} ${db.tls.ca_file}`, {
        hint: `Fix the path at ${db.source.file}:${db.source.line}, or remove ca_file to trust the system CAs.`,
      });
    }
  }
  return {
    name: db.name,
    protocol: db.protocol,
    host: db.host,
    port: db.port,
    tls: {
      mode: db.tls.mode,
      ...(ca ? { ca } : {}),
      caSource: db.tls.ca_file ? `the CA in ${db.tls.ca_file}` : 'the system CAs',
      serverName: db.tls.server_name ?? db.host,
    },
    serverKind: db.azure?.server_kind ?? 'flexible',
    ...(db.azure?.server_name ? { serverName: db.azure.server_name } : {}),
  };
}
