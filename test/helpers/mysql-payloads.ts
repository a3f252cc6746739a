/**
 * MySQL payloads built on the test side: client commands the broker only reads (its codec encodes
 * none of them); the names of MariaDB's extended capability bits come from the codec.
 */
import { Command } from '../../src/broker/mysql/codec/commands.js';
import { Capability, hasCapability } from '../../src/broker/mysql/codec/constants.js';
import { PayloadWriter } from '../../src/broker/mysql/codec/values.js';

export { MariaDbCapability } from '../../src/broker/mysql/codec/constants.js';

/** A COM_QUERY without query attributes (an empty attribute set under CLIENT_QUERY_ATTRIBUTES). */
export function comQuery(sql: string, capabilities = 0): Buffer {
  const writer = new PayloadWriter(Buffer.byteLength(sql) + 3).u8(Command.Query);
  if (hasCapability(capabilities, Capability.QueryAttributes)) writer.lenenc(0).lenenc(1);
  return writer.string(sql).finish();
}

export function comStmtPrepare(sql: string): Buffer {
  return new PayloadWriter(Buffer.byteLength(sql) + 1).u8(Command.StmtPrepare).string(sql).finish();
}

