/**
 * MySQL payloads built on the test side: client commands the broker only reads (its codec encodes
 * none of them), and the names of MariaDB's extended capability bits, which it passes through.
 */
import { Command } from '../../src/broker/mysql/codec/commands.js';
import { Capability, hasCapability } from '../../src/broker/mysql/codec/constants.js';
import { PayloadWriter } from '../../src/broker/mysql/codec/values.js';

/** A COM_QUERY without query attributes (an empty attribute set under CLIENT_QUERY_ATTRIBUTES). */
export function comQuery(sql: string, capabilities = 0): Buffer {
  const writer = new PayloadWriter(Buffer.byteLength(sql) + 3).u8(Command.Query);
  if (hasCapability(capabilities, Capability.QueryAttributes)) writer.lenenc(0).lenenc(1);
  return writer.string(sql).finish();
}

export function comStmtPrepare(sql: string): Buffer {
  return new PayloadWriter(Buffer.byteLength(sql) + 1).u8(Command.StmtPrepare).string(sql).finish();
}

/**
 * MariaDB's extended capabilities: bits 32..63 of its 64-bit flags, shifted down by 32. They
 * travel in reserved bytes of the handshake, and only count when CLIENT_MYSQL is unset.
 */
export enum MariaDbCapability {
  Progress = 1 << 0, // MARIADB_CLIENT_PROGRESS
  ComMulti = 1 << 1, // MARIADB_CLIENT_COM_MULTI (deprecated)
  StmtBulkOperations = 1 << 2, // MARIADB_CLIENT_STMT_BULK_OPERATIONS
  ExtendedMetadata = 1 << 3, // MARIADB_CLIENT_EXTENDED_METADATA
  CacheMetadata = 1 << 4, // MARIADB_CLIENT_CACHE_METADATA
  BulkUnitResults = 1 << 5, // MARIADB_CLIENT_BULK_UNIT_RESULTS
}
