/** What a session reports about itself: a token in a server's or client's error text never reaches the audit or the UI events. */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import type { AuditEvent, AuditSink } from '../../src/broker/audit.js';
import { sessionRecord } from '../../src/broker/session-record.js';
import type { SessionEvent } from '../../src/broker/session-record.js';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const IDENTITY = { session_id: 's1', database: 'orders', protocol: 'postgres', db_user: 'app', db_name: 'orders', client_address: '127.0.0.1:5000' } as const;

function record() {
  const audit: AuditEvent[] = [];
  const events: SessionEvent[] = [];
  const sink: AuditSink = { queries: false, write: (event) => void audit.push(event), close: async () => {} };
  const socket = { bytesRead: 10, bytesWritten: 20 } as Socket;
  return { audit, events, record: sessionRecord('s1', socket, sink, (e) => events.push(e)) };
}

describe('sessionRecord', () => {
  it('redacts a token in a rejection and in the error of an ended session', () => {
    const rejected = record();
    rejected.record.rejected(IDENTITY, `the server said: password ${JWT} is wrong`);
    const ended = record();
    ended.record.ended(IDENTITY, 'error', `upstream: ${JWT}`);
    for (const { audit, events } of [rejected, ended]) {
      expect(audit).toHaveLength(1);
      expect(events).toHaveLength(1);
      expect(JSON.stringify([audit, events])).not.toContain(JWT);
      expect(JSON.stringify([audit, events])).toContain('[redacted token]');
    }
    expect(ended.audit[0]).toMatchObject({ event: 'session.end', result: 'error', bytes_from_client: 10, bytes_to_client: 20 });
  });
});
