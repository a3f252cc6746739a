/**
 * Audit lines for MySQL commands, shaped like the PostgreSQL ones: COM_QUERY text ('simple'),
 * COM_STMT_PREPARE text ('prepare'), COM_STMT_EXECUTE's statement id ('execute'). Parameter and
 * query-attribute values are never read. Works on the head of a packet: longer text is cut.
 */
import { queryEvent, truncateQuery, type AuditSink, type SessionIdentity } from '../audit.js';
import { Command, decodeQuery, decodeStmtPrepare } from './codec/commands.js';

export function auditCommand(audit: AuditSink, identity: SessionIdentity, head: Buffer, length: number, capabilities: number): void {
  const cut = length - head.length;
  switch (head[0]) {
    case Command.Query:
      audit.write(queryEvent(identity, 'simple', truncateQuery(queryText(head, capabilities), cut)));
      break;
    case Command.StmtPrepare:
      audit.write(queryEvent(identity, 'prepare', truncateQuery(prepareText(head), cut)));
      break;
    case Command.StmtExecute:
    case Command.StmtBulkExecute: // MariaDB's; the statement id sits where COM_STMT_EXECUTE has it
      if (head.length >= 5) {
        const line = queryEvent(identity, 'execute', '');
        line.statement = String(head.readUInt32LE(1));
        audit.write(line);
      }
      break;
  }
}

/** A COM_QUERY whose attributes run past the head (or are broken) is audited without text: the server judges it. */
function queryText(head: Buffer, capabilities: number): string {
  try {
    return decodeQuery(head, capabilities).sql;
  } catch {
    return '';
  }
}

function prepareText(head: Buffer): string {
  try {
    return decodeStmtPrepare(head);
  } catch {
    return '';
  }
}
