/**
 * The audit of a relayed PostgreSQL session: the client→server stream, framed on the side by the
 * codec's FrameDecoder, gives one line per Query, Parse, Bind and Execute. The stream itself is
 * passed on untouched. Other messages (COPY data above all) are skipped by length, never
 * buffered; audited ones are read up to a head of AUDIT_HEAD_LENGTH bytes, so a 1 GB Bind costs
 * the broker that much at most and its parameter values are never read. Nothing is capped below
 * what the server accepts: the server judges every length the audit does not read.
 */
import { errorMessage } from '../../errors.js';
import { truncateQuery, type AuditEvent, type AuditSink, type SessionIdentity } from '../audit.js';
import type { RelayTap } from '../relay.js';
import { FrameDecoder } from './codec/frame-decoder.js';
import type { Frame } from './codec/frames.js';
import { FrontendCode, decodeBind, decodeExecute, decodeParse, decodeQuery } from './codec/messages.js';

const AUDITED: ReadonlySet<number> = new Set([FrontendCode.Query, FrontendCode.Parse, FrontendCode.Bind, FrontendCode.Execute]);

/**
 * Payload bytes read of an audited message: a statement name and the 16 Ki characters of query
 * text an audit line keeps (3 bytes each in UTF-8 at most), or a Bind's names and the format codes
 * of 65 535 parameters that come before its parameter count.
 */
export const AUDIT_HEAD_LENGTH = 192 * 1024;

type QueryLine = Extract<AuditEvent, { event: 'query' }>;

export function queryAudit(audit: AuditSink, identity: SessionIdentity): RelayTap {
  return (fail) => {
    const decoder = new FrameDecoder({ keep: AUDITED, headLength: AUDIT_HEAD_LENGTH });
    const base = { event: 'query' as const, session_id: identity.session_id, database: identity.database, db_user: identity.db_user, db_name: identity.db_name };
    return (chunk: Buffer) => {
      try {
        decoder.push(chunk);
        for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) audit.write(auditLine(base, frame));
      } catch (error) {
        fail(`client sent a malformed message: ${errorMessage(error)}`);
        return [];
      }
      return chunk;
    };
  };
}

/** A cut message (longer than the head) is decoded as far as the head goes; its text says how much is missing. */
function auditLine(base: Pick<QueryLine, 'event' | 'session_id' | 'database' | 'db_user' | 'db_name'>, frame: Frame): QueryLine {
  const cut = frame.length - frame.payload.length;
  switch (frame.code) {
    case FrontendCode.Query:
      return { ...base, kind: 'simple', query: auditText(decodeQuery(frame.payload, cut > 0), cut) };
    case FrontendCode.Parse: {
      const parse = decodeParse(frame.payload, cut > 0);
      return { ...base, kind: 'parse', query: auditText(parse.query, cut), statement: parse.statement };
    }
    case FrontendCode.Bind: {
      const bind = decodeBind(frame.payload, cut > 0);
      return { ...base, kind: 'bind', query: '', statement: bind.statement, portal: bind.portal, ...(bind.parameterCount === undefined ? {} : { parameters: bind.parameterCount }) };
    }
    default:
      return { ...base, kind: 'execute', query: '', portal: decodeExecute(frame.payload, cut > 0).portal };
  }
}

/** Cut to the audit's length first, so the note of what the head left out is never cut away. */
function auditText(sql: string, cut: number): string {
  return cut > 0 ? `${truncateQuery(sql)}…[${cut} more bytes]` : truncateQuery(sql);
}
