import { describe, expect, it } from 'vitest';
import { cstring, encodeMessage } from '../../../../src/broker/postgres/codec/frames.js';
import { encodeParameterStatus, encodeReadyForQuery } from '../../../../src/broker/postgres/codec/messages.js';
import { SessionTracker } from '../../../../src/broker/postgres/pool/session-tracker.js';

const msg = (code: string, payload: Buffer = Buffer.alloc(0)) => encodeMessage(code.charCodeAt(0), payload);
const query = (sql: string) => msg('Q', cstring(sql));
const TERMINATE = msg('X');
const SYNC = msg('S');
const PARSE = msg('P', Buffer.concat([cstring(''), cstring('select 1'), Buffer.from([0, 0])]));
const DATA_ROW = msg('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x31]));

/** Feeds `bytes` to the tracker in two chunks split at `at`; returns what it forwards. */
function feedClient(tracker: SessionTracker, bytes: Buffer, at: number): Buffer {
  return Buffer.concat([tracker.fromClient(bytes.subarray(0, at)), tracker.fromClient(bytes.subarray(at))]);
}

describe('SessionTracker', () => {
  it('is idle once every query has its ReadyForQuery, at every split of both streams', () => {
    const client = Buffer.concat([query('begin'), query('select 1')]);
    const server = Buffer.concat([msg('C', cstring('BEGIN')), encodeReadyForQuery('T'), DATA_ROW, msg('C', cstring('SELECT 1')), encodeReadyForQuery('T')]);
    for (let at = 0; at <= client.length; at++) {
      const tracker = new SessionTracker(new Map());
      expect(feedClient(tracker, client, at)).toEqual(client);
      expect(tracker.idleStatus()).toBeUndefined();
      for (let cut = 0; cut < server.length; cut += 7) {
        tracker.fromServer(server.subarray(cut, Math.min(cut + 7, server.length)));
        if (cut + 7 < server.length) expect(tracker.idleStatus()).toBeUndefined();
      }
      expect(tracker.idleStatus()).toBe('T');
    }
  });

  it('cuts the Terminate, wherever it is split from what came before, and forwards nothing after it', () => {
    const client = Buffer.concat([query('commit'), TERMINATE]);
    for (let at = 0; at <= query('commit').length; at++) {
      const tracker = new SessionTracker(new Map());
      expect(feedClient(tracker, client, at)).toEqual(query('commit'));
      expect(tracker.terminated).toBe(true);
      expect(tracker.fromClient(query('select 1'))).toHaveLength(0);
      tracker.fromServer(encodeReadyForQuery('I'));
      expect(tracker.idleStatus()).toBe('I');
    }
  });

  it('is not idle while an extended-protocol exchange waits for its Sync', () => {
    const tracker = new SessionTracker(new Map());
    tracker.fromClient(PARSE);
    expect(tracker.idleStatus()).toBeUndefined();
    tracker.fromClient(SYNC);
    tracker.fromServer(Buffer.concat([msg('1'), encodeReadyForQuery('I')]));
    expect(tracker.idleStatus()).toBe('I');
  });

  it('is not idle in the middle of a message from the server', () => {
    const tracker = new SessionTracker(new Map());
    tracker.fromClient(query('select 1'));
    tracker.fromServer(encodeReadyForQuery('I'));
    tracker.fromServer(DATA_ROW.subarray(0, 3));
    expect(tracker.idleStatus()).toBeUndefined();
  });

  it('keeps the ParameterStatus values the server reports', () => {
    const parameters = new Map([['application_name', 'a']]);
    const tracker = new SessionTracker(parameters);
    tracker.fromServer(Buffer.concat([encodeParameterStatus('application_name', 'b'), encodeParameterStatus('TimeZone', 'UTC')]));
    expect(Object.fromEntries(parameters)).toEqual({ application_name: 'b', TimeZone: 'UTC' });
  });

  it('follows messages framed by the caller as it follows their bytes', () => {
    const parameters = new Map<string, string>();
    const tracker = new SessionTracker(parameters);
    tracker.clientMessage(0x50 /* P */, PARSE.length - 5);
    expect(tracker.idleStatus()).toBeUndefined();
    // CopyData-like bytes the tracker frames itself, then a message framed by the caller again.
    tracker.fromClient(SYNC.subarray(0, 2));
    tracker.fromClient(SYNC.subarray(2));
    tracker.clientMessage(0x51 /* Q */, query('select 1').length - 5);
    const ready = encodeReadyForQuery('T');
    const status = encodeParameterStatus('TimeZone', 'UTC');
    const reply = Buffer.concat([msg('1'), ready, status, encodeReadyForQuery('I')]);
    // The caller reads ReadyForQuery and ParameterStatus to the tracker and says where its whole messages end.
    tracker.serverBytes(reply.length - 3);
    tracker.serverMessage({ code: 0x5a, length: 1, payload: Buffer.from('T') });
    tracker.serverMessage({ code: 0x53, length: status.length - 5, payload: status.subarray(5) });
    tracker.serverFramedTo(reply.length - 6);
    expect(tracker.idleStatus()).toBeUndefined();
    // Bytes of a message seen but not yet whole: not idle, though nothing is owed but its ReadyForQuery.
    tracker.serverBytes(3);
    expect(tracker.idleStatus()).toBeUndefined();
    tracker.serverMessage({ code: 0x5a, length: 1, payload: Buffer.from('I') });
    tracker.serverFramedTo(reply.length);
    expect(tracker.idleStatus()).toBe('I');
    expect(parameters.get('TimeZone')).toBe('UTC');
  });
});
