/** When a MySQL session is at rest for disconnect_expired: responses followed per command, at every split. */
import { describe, expect, it } from 'vitest';
import { mysqlBoundary } from '../../../src/broker/mysql/transaction-boundary.js';
import { Capability, ServerStatus } from '../../../src/broker/mysql/codec/constants.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';

const DEPRECATE = Capability.DeprecateEof;
const ok = (status: number, header = 0x00) => Buffer.from([header, 0, 0, status & 0xff, status >> 8, 0, 0]);
const eof = (status: number) => Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8]);
const packets = (...payloads: Buffer[]) => Buffer.concat(payloads.map((p, i) => encodePacket(i + 1, p)));
const query = (sql: string) => encodePacket(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]));
const column = Buffer.from('\x03def\x00\x00\x00\x01a\x00\x0c\x21\x00\x0b\x00\x00\x00\x08\x00\x00\x00\x00\x00', 'latin1');
// A row whose first column is '' (0x00) and one starting 0xfe-looking: only the phase tells them from OK/EOF.
const rows = [Buffer.from([0x00]), Buffer.from([0x01, 0xfe])];
const IN_TRANS = ServerStatus.InTrans | ServerStatus.Autocommit;
const IDLE = ServerStatus.Autocommit;

/** Feeds the client command, then the server answer split at `split`; says whether at rest before and after. */
function run(capabilities: number, command: Buffer, answer: Buffer, split: number) {
  const tracker = mysqlBoundary(capabilities, 0, Buffer.alloc(0));
  tracker.fromClient(command);
  const busy = tracker.atRest;
  tracker.fromServer(answer.subarray(0, split));
  const middle = tracker.atRest;
  tracker.fromServer(answer.subarray(split));
  return { busy, middle, after: tracker.atRest };
}

describe('mysqlBoundary', () => {
  it('is at rest at first, busy while a command is answered, and at rest after a result set without a transaction, at every split', () => {
    for (const [capabilities, answer] of [
      [DEPRECATE, packets(Buffer.from([1]), column, ...rows, ok(IDLE, 0xfe))],
      [0, packets(Buffer.from([1]), column, eof(IDLE), ...rows, eof(IDLE))],
    ] as const) {
      expect(mysqlBoundary(capabilities, 0, Buffer.alloc(0)).atRest).toBe(true);
      for (let split = 1; split < answer.length; split++) {
        expect(run(capabilities, query('select'), answer, split)).toEqual({ busy: false, middle: false, after: true });
      }
    }
  });

  it('is not at rest inside a transaction, nor before every result of a multi-statement answer', () => {
    expect(run(DEPRECATE, query('begin'), packets(ok(IN_TRANS)), 1).after).toBe(false);
    const multi = packets(ok(IDLE | ServerStatus.MoreResultsExist), Buffer.from([1]), column, ...rows, ok(IDLE, 0xfe));
    const firstOnly = encodePacket(1, ok(IDLE | ServerStatus.MoreResultsExist)).length;
    expect(run(DEPRECATE, query('a; b'), multi, firstOnly).middle).toBe(false);
    expect(run(DEPRECATE, query('a; b'), multi, firstOnly).after).toBe(true);
  });

  it('follows a prepare (definitions) and takes no answer for COM_STMT_CLOSE', () => {
    const prepareOk = Buffer.from([0x00, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]); // 1 column, 1 parameter
    const tracker = mysqlBoundary(DEPRECATE, 0, Buffer.alloc(0));
    tracker.fromClient(encodePacket(0, Buffer.from([0x16, 0x73])));
    tracker.fromServer(packets(prepareOk, column));
    expect(tracker.atRest).toBe(false);
    tracker.fromServer(encodePacket(3, column));
    expect(tracker.atRest).toBe(true);
    tracker.fromClient(encodePacket(0, Buffer.from([0x19, 1, 0, 0, 0])));
    expect(tracker.atRest).toBe(true);
  });

  it('gives up (never at rest) on a command it does not know, and counts bytes the client sent before the relay', () => {
    const tracker = mysqlBoundary(DEPRECATE, 0, Buffer.alloc(0));
    tracker.fromClient(encodePacket(0, Buffer.from([0x12, 1, 2])));
    tracker.fromServer(packets(ok(IDLE)));
    expect(tracker.atRest).toBe(false);
    const early = mysqlBoundary(DEPRECATE, 0, query('select 1'));
    expect(early.atRest).toBe(false);
    early.fromServer(packets(ok(IDLE)));
    expect(early.atRest).toBe(true);
  });

  it('follows a cursor: the execute is answered at the columns\' EOF, each COM_STMT_FETCH by its rows', () => {
    const tracker = mysqlBoundary(0, 0, Buffer.alloc(0));
    const execute = Buffer.from([0x17, 1, 0, 0, 0, 0x01, 1, 0, 0, 0]); // CURSOR_TYPE_READ_ONLY, no parameters
    tracker.fromClient(encodePacket(0, execute));
    tracker.fromServer(packets(Buffer.from([1]), column, eof(IDLE | ServerStatus.CursorExists)));
    expect(tracker.atRest).toBe(true);
    for (let i = 0; i < 2; i++) {
      tracker.fromClient(encodePacket(0, Buffer.from([0x1c, 1, 0, 0, 0, 1, 0, 0, 0])));
      expect(tracker.atRest).toBe(false);
      tracker.fromServer(packets(Buffer.from([0x00, 0x00, 0x01]), eof(IDLE | ServerStatus.CursorExists)));
      expect(tracker.atRest).toBe(true);
    }
  });

  it('reads the status after two 9-byte lengths in an OK, follows MariaDB bulk execute and result sets without metadata', () => {
    const longOk = Buffer.concat([Buffer.from([0x00, 0xfe]), Buffer.alloc(8, 1), Buffer.from([0xfe]), Buffer.alloc(8, 1), Buffer.from([IN_TRANS & 0xff, IN_TRANS >> 8, 0, 0])]);
    expect(run(DEPRECATE, query('insert'), packets(longOk), 1)).toEqual({ busy: false, middle: false, after: false });
    const bulk = encodePacket(0, Buffer.from([0xfa, 1, 0, 0, 0, 0, 0]));
    expect(run(DEPRECATE, bulk, packets(ok(IDLE)), 1)).toEqual({ busy: false, middle: false, after: true });
    const noMetadata = packets(Buffer.from([1, 0]), ...rows, ok(IDLE, 0xfe));
    expect(run(DEPRECATE | Capability.OptionalResultsetMetadata, query('select'), noMetadata, 2)).toEqual({ busy: false, middle: false, after: true });
  });

  it('takes COM_CHANGE_USER and the client\'s auth packets after it as answered by azdb, not the server', () => {
    const tracker = mysqlBoundary(DEPRECATE, 0, Buffer.alloc(0));
    tracker.fromClient(encodePacket(0, Buffer.from([0x11, 0x72, 0, 0])));
    tracker.fromClient(encodePacket(3, Buffer.from('token')));
    expect(tracker.atRest).toBe(true);
    tracker.fromClient(query('select 1'));
    tracker.fromServer(packets(ok(IDLE)));
    expect(tracker.atRest).toBe(true);
  });
});
