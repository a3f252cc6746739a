/**
 * Audit lines for MySQL commands, shaped like the PostgreSQL ones: COM_QUERY text ('simple'),
 * COM_STMT_PREPARE text ('prepare'), COM_STMT_EXECUTE's statement id ('execute'). Parameter and
 * query-attribute values are never read. Works on the head of a packet: longer text is cut.
 */
import { truncateQuery, type AuditSink, type SessionIdentity } from '../audit.js';
import { Command, decodeQuery, decodeStmtPrepare } from './codec/commands.js';

export function auditCommand(audit: AuditSink, identity: SessionIdentity, head: Buffer, length: number, capabilities: number): void {
  const base = { event: 'query' as const, session_id: identity.session_id, database: identity.database, db_user: identity.db_user, db_name: identity.db_name };
  const cut = length - head.length;
  const text = (decode: () => string): string => {
    let sql: string;
    try {
      sql = decode();
    } catch {
      // A COM_QUERY whose attributes run past the head (or are broken): the server judges it.
      sql = '';
    }
    // Cut to the audit's length first, so the note of what the head left out is never cut away.
    const shown = truncateQuery(sql);
    return cut > 0 ? `${shown}…[${cut} more bytes]` : shown;
  };
  switch (head[0]) {
    case Command.Query:
      audit.write({ ...base, kind: 'simple', query: text(() => decodeQuery(head, capabilities).sql) });
      break;
    case Command.StmtPrepare:
      audit.write({ ...base, kind: 'prepare', query: text(() => decodeStmtPrepare(head)) });
      break;
    case Command.StmtExecute:
      if (head.length >= 5) audit.write({ ...base, kind: 'execute', query: '', statement: String(head.readUInt32LE(1)) });
      break;
  }
}
