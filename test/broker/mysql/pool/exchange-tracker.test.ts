import { describe, expect, it } from 'vitest';
import { ExchangeTracker } from '../../../../src/broker/mysql/pool/exchange-tracker.js';
import { Command } from '../../../../src/broker/mysql/codec/commands.js';
import { Capability, ServerStatus } from '../../../../src/broker/mysql/codec/constants.js';
import { encodePacket } from '../../../../src/broker/mysql/codec/packets.js';
import { encodeErr, encodeOk } from '../../../../src/broker/mysql/codec/responses.js';
import { PayloadWriter } from '../../../../src/broker/mysql/codec/values.js';
import { comQuery, comStmtPrepare } from '../../../helpers/mysql-payloads.js';

const CAPS = Capability.Protocol41 | Capability.MultiResults;
const IN_TRANS = ServerStatus.InTrans | ServerStatus.Autocommit;

/** Packets numbered from `first`. */
const packets = (first: number, ...payloads: Buffer[]) => Buffer.concat(payloads.map((p, i) => encodePacket((first + i) & 0xff, p)));
const ok = (status: number) => encodeOk({ statusFlags: status }, CAPS);
const eof = (status: number) => new PayloadWriter().u8(0xfe).u16(0).u16(status).finish();
const columnDefinition = Buffer.from('\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x80\x00\x00\x00\x00', 'latin1');
const row = (text: string) => new PayloadWriter().lenencBytes(Buffer.from(text)).finish();
const columnCount = (n: number) => new PayloadWriter().lenenc(n).finish();
const prepareOk = (columns: number, params: number) => new PayloadWriter().u8(0).u32(7).u16(columns).u16(params).u8(0).u16(0).finish();
const stmtClose = new PayloadWriter().u8(Command.StmtClose).u32(7).finish();

/** One command and its answer, as the two streams carry them. */
interface Exchange {
  client: Buffer;
  server: Buffer;
}

const SCRIPT: Exchange[] = [
  // A result set that leaves a transaction open.
  { client: packets(0, comQuery('begin; select 1')), server: Buffer.concat([packets(1, ok(IN_TRANS | ServerStatus.MoreResultsExist), columnCount(1), columnDefinition, eof(IN_TRANS), row('1'), row('\xfe'), eof(IN_TRANS))]) },
  // A prepare with parameters and columns, and a close nobody answers.
  { client: packets(0, comStmtPrepare('select ?, ?')), server: packets(1, prepareOk(1, 2), columnDefinition, columnDefinition, eof(IN_TRANS), columnDefinition, eof(IN_TRANS)) },
  { client: packets(0, stmtClose), server: Buffer.alloc(0) },
  // LOCAL INFILE: the server asks, the client sends data and an empty packet, the server answers.
  { client: packets(0, comQuery("load data local infile 'x' into table t")), server: packets(1, Buffer.from('\xfbx', 'latin1')) },
  { client: packets(2, Buffer.from('1\n2\n'), Buffer.alloc(0)), server: packets(4, ok(IN_TRANS)) },
  { client: packets(0, comQuery('select nothing')), server: packets(1, encodeErr({ code: 1054, sqlState: '42S22', message: 'no' })) },
  { client: packets(0, comQuery('commit')), server: packets(1, ok(ServerStatus.Autocommit)) },
];

describe('ExchangeTracker', () => {
  it('is idle only between answered commands, at every split of either stream', () => {
    // After the LOCAL INFILE request the client still owes its data: not idle there.
    const idleAfter = [true, true, true, false, true, true, true];
    SCRIPT.forEach((exchange, index) => {
      for (const side of ['client', 'server'] as const) {
        for (let at = 0; at <= exchange[side].length; at++) {
          const tracker = new ExchangeTracker(CAPS);
          SCRIPT.slice(0, index).forEach((e) => (tracker.fromClient(e.client), tracker.fromServer(e.server)));
          const bytes = exchange[side];
          const feed = (b: Buffer) => (side === 'client' ? tracker.fromClient(b) : tracker.fromServer(b));
          if (side === 'server') tracker.fromClient(exchange.client);
          feed(bytes.subarray(0, at));
          if ((side === 'server' || at > 0) && at < bytes.length) expect(tracker.idle, `${side} of exchange ${index} cut at ${at}`).toBe(false);
          feed(bytes.subarray(at));
          if (side === 'client') tracker.fromServer(exchange.server);
          expect(tracker.idle, `${side} of exchange ${index} split at ${at}`).toBe(idleAfter[index]);
          SCRIPT.slice(index + 1).forEach((e) => (tracker.fromClient(e.client), tracker.fromServer(e.server)));
          expect(tracker.idle).toBe(true);
          expect(tracker.inTransaction).toBe(false);
        }
      }
    });
  });

  it('follows the transaction state exchange by exchange', () => {
    const tracker = new ExchangeTracker(CAPS);
    const states = SCRIPT.map((e) => {
      tracker.fromClient(e.client);
      tracker.fromServer(e.server);
      return [tracker.idle, tracker.inTransaction];
    });
    // After the LOCAL INFILE request the client still owes its data.
    expect(states).toEqual([[true, true], [true, true], [true, true], [false, true], [true, true], [true, true], [true, false]]);
  });

  it('ends rows at the OK of CLIENT_DEPRECATE_EOF, and knows a cursor there cannot be followed', () => {
    const caps = CAPS | Capability.DeprecateEof;
    const tracker = new ExchangeTracker(caps);
    tracker.fromClient(packets(0, comQuery('select 1')));
    tracker.fromServer(packets(1, columnCount(1), columnDefinition, row('1'), encodeOk({ statusFlags: IN_TRANS }, caps, 0xfe)));
    expect([tracker.idle, tracker.inTransaction]).toEqual([true, true]);
    const execute = new PayloadWriter().u8(Command.StmtExecute).u32(7).u8(1).u32(1).finish();
    tracker.fromClient(packets(0, execute));
    expect(tracker.lost).toBe(true);
  });

  it('waits for a cursor\'s fetches only as long as they are asked for', () => {
    const tracker = new ExchangeTracker(CAPS);
    const execute = new PayloadWriter().u8(Command.StmtExecute).u32(7).u8(1).u32(1).finish();
    tracker.fromClient(packets(0, execute));
    tracker.fromServer(packets(1, columnCount(1), columnDefinition, eof(ServerStatus.Autocommit | ServerStatus.CursorExists)));
    expect(tracker.idle).toBe(true);
    tracker.fromClient(packets(0, new PayloadWriter().u8(Command.StmtFetch).u32(7).u32(10).finish()));
    tracker.fromServer(packets(1, row('a')));
    expect(tracker.idle).toBe(false);
    tracker.fromServer(packets(2, eof(ServerStatus.Autocommit | ServerStatus.LastRowSent)));
    expect(tracker.idle).toBe(true);
  });

  it('cuts the client\'s COM_QUIT and what follows it, and forbids reuse after anything it cannot follow', () => {
    const tracker = new ExchangeTracker(CAPS);
    const query = packets(0, comQuery('select 1'));
    const out = tracker.fromClient(Buffer.concat([query, packets(0, Buffer.from([Command.Quit])), query]));
    expect(out).toEqual(query);
    expect(tracker.terminated).toBe(true);
    const dump = new ExchangeTracker(CAPS);
    dump.fromClient(packets(0, Buffer.from([Command.BinlogDump, 0, 0, 0, 0])));
    expect(dump.idle).toBe(false);
    const unasked = new ExchangeTracker(CAPS);
    unasked.fromServer(packets(0, encodeErr({ code: 4031, sqlState: 'HY000', message: 'timeout' })));
    expect(unasked.idle).toBe(false);
  });
});
