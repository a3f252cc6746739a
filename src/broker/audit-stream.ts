/**
 * Audit lines to a stream (`broker.audit.path: "-"` → stdout, for containers whose log pipeline
 * collects stdout). Same lines as the file sink; a token or a password is never in them.
 */
import type { Writable } from 'node:stream';
import type { AuditSink } from './audit.js';

export function createStreamAuditSink(stream: Writable, options: { queries: boolean }): AuditSink {
  return {
    queries: options.queries,
    write(event) {
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    },
    // The stream belongs to the process (stdout); it is not ended here.
    close: async () => {},
  };
}
