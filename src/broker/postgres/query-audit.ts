/**
 * The audit of a relayed PostgreSQL session: the client→server stream, framed on the side by the
 * codec's FrameDecoder, gives one line per Query, Parse, Bind and Execute. The stream itself is
 * passed on untouched. Other messages (COPY data above all) are skipped by length, never
 * buffered; audited ones are read up to a head of AUDIT_HEAD_LENGTH bytes, so a 1 GB Bind costs
 * the broker that much at most and its parameter values are never read. Nothing is capped below
 * what the server accepts: the server judges every length the audit does not read.
 */
import { errorMessage } from '../../errors.js';
import { queryEvent, truncateQuery, type AuditSink, type QueryEvent, type SessionIdentity } from '../audit.js';
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

export function queryAudit(audit: AuditSink, identity: SessionIdentity): RelayTap {
  return (fail) => {
    const decoder = new FrameDecoder({ keep: AUDITED, headLength: AUDIT_HEAD_LENGTH });
    return (chunk: Buffer) => {
      try {
        decoder.push(chunk);
        for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) audit.write(auditLine(identity, frame));
      } catch (error) {
        fail(`client sent a malformed message: ${errorMessage(error)}`);
        return [];
      }
      return chunk;
    };
  };
}

/** A cut message (longer than the head) is decoded as far as the head goes; its text says how much is missing. */
function auditLine(identity: SessionIdentity, frame: Frame): QueryEvent {
  const cut = frame.length - frame.payload.length;
  switch (frame.code) {
    case FrontendCode.Query:
      return queryEvent(identity, 'simple', truncateQuery(decodeQuery(frame.payload, cut > 0), cut));
    case FrontendCode.Parse: {
      const parse = decodeParse(frame.payload, cut > 0);
      const line = queryEvent(identity, 'parse', truncateQuery(parse.query, cut));
      line.statement = parse.statement;
      return line;
    }
    case FrontendCode.Bind: {
      const bind = decodeBind(frame.payload, cut > 0);
      const line = queryEvent(identity, 'bind', '');
      line.statement = bind.statement;
      line.portal = bind.portal;
      if (bind.parameterCount !== undefined) line.parameters = bind.parameterCount;
      return line;
    }
    default: {
      const line = queryEvent(identity, 'execute', '');
      line.portal = decodeExecute(frame.payload, cut > 0).portal;
      return line;
    }
  }
}
