/** What a session reports about itself: a token in a server's or client's error text never reaches the audit or the UI events. */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { userInfo } from 'node:os';
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

describe('session.start', () => {
  const jwt = (claims: Record<string, unknown>) => ['{"alg":"RS256","typ":"JWT"}', JSON.stringify(claims)].map((p) => Buffer.from(p).toString('base64url')).join('.') + '.c2lnbmF0dXJl';

  it('names the person: object id, sign-in name, tenant and the OS user, never the token', () => {
    const { audit, events, record: r } = record();
    const token = jwt({ oid: 'user-oid', upn: 'alice@contoso.com', tid: 'tenant-1', appid: 'app-ignored-for-people' });
    r.started(IDENTITY, 'app', 'orders', token);
    expect(events).toEqual([{ type: 'relaying', id: 's1', dbUser: 'app', dbName: 'orders', client: IDENTITY.client_address }]);
    expect(audit[0]).toEqual({ event: 'session.start', ...IDENTITY, oid: 'user-oid', upn: 'alice@contoso.com', tid: 'tenant-1', os_user: userInfo().username });
    expect(JSON.stringify(audit)).not.toContain(token);
  });

  it('names an application by its app id, and records no claims of a token that is not a JWT', () => {
    const app = record();
    app.record.started(IDENTITY, 'app', 'orders', jwt({ oid: 'mi-oid', appid: 'mi-client-id', tid: 'tenant-1', idtyp: 'app' }));
    expect(app.audit[0]).toMatchObject({ oid: 'mi-oid', appid: 'mi-client-id', tid: 'tenant-1' });
    expect(app.audit[0]).not.toHaveProperty('upn');
    const opaque = record();
    opaque.record.started(IDENTITY, 'app', 'orders', 'not-a-jwt');
    expect(opaque.audit[0]).toEqual({ event: 'session.start', ...IDENTITY, os_user: userInfo().username });
  });
});
