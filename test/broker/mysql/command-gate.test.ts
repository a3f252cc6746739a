import { describe, expect, it } from 'vitest';
import { CommandGate, INTERCEPTED_HEAD_LENGTH, type GateEvent } from '../../../src/broker/mysql/command-gate.js';
import { Command } from '../../../src/broker/mysql/codec/commands.js';
import { comQuery, comStmtPrepare } from '../../helpers/mysql-payloads.js';
import { MAX_PHYSICAL_PAYLOAD, encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { MySqlProtocolError } from '../../../src/broker/mysql/codec/protocol-error.js';
import { translateKill } from '../../../src/broker/mysql/kill-translation.js';
import { Capability } from '../../../src/broker/mysql/codec/constants.js';

const query = (sql: string) => encodePacket(0, comQuery(sql, 0));
const changeUser = encodePacket(0, Buffer.from([Command.ChangeUser, ...Buffer.from('root\0'), 0, 0]));

/** Feeds `chunks` (what follows an intercepted command again, as the session does once it answered); returns what went on and the events, heads copied. */
function run(gate: CommandGate, chunks: Buffer[]): { forwarded: Buffer; events: GateEvent[] } {
  const forwarded: Buffer[] = [];
  const events: GateEvent[] = [];
  for (let chunk of chunks) {
    for (;;) {
      const result = gate.push(chunk);
      forwarded.push(...result.forward.map((b) => Buffer.from(b)));
      events.push(...result.events.map((e) => (e.type === 'command' ? { ...e, head: Buffer.from(e.head) } : e)));
      if (result.rest.length === 0) break;
      expect(result.events.at(-1)?.type).toBe('intercepted');
      chunk = result.rest;
    }
  }
  return { forwarded: Buffer.concat(forwarded), events };
}

describe('CommandGate', () => {
  const stream = [query('select 1'), changeUser, encodePacket(0, comStmtPrepare('select ?')), encodePacket(0, Buffer.alloc(0)), query('select 2')];
  const input = Buffer.concat(stream);
  const expected = Buffer.concat(stream.filter((p) => p !== changeUser));

  it('passes commands on untouched and holds back COM_CHANGE_USER whole, at every split', () => {
    const whole = run(new CommandGate(64), [input]);
    expect(whole.forwarded).toEqual(expected);
    expect(whole.events.map((e) => (e.type === 'command' ? `command:${e.head[0]}` : `intercepted:${e.lastSequenceId}`))).toEqual([
      `command:${Command.Query}`,
      'intercepted:0',
      `command:${Command.StmtPrepare}`,
      `command:${Command.Query}`,
    ]);
    expect(whole.events[1]).toMatchObject({ payload: changeUser.subarray(4), length: changeUser.length - 4 });
    for (let a = 0; a <= input.length; a++) {
      for (let b = a; b <= input.length; b += 3) {
        const split = run(new CommandGate(64), [input.subarray(0, a), input.subarray(a, b), input.subarray(b)]);
        expect(split.forwarded).toEqual(expected);
        expect(split.events).toEqual(whole.events);
      }
    }
    const bytewise = run(new CommandGate(64), [...input].map((byte) => Buffer.from([byte])));
    expect(bytewise.forwarded).toEqual(expected);
    expect(bytewise.events).toEqual(whole.events);
  });

  it('forwards a whole chunk as the same buffer, without copying', () => {
    const chunk = query('select 42');
    expect(new CommandGate(1).push(chunk).forward).toEqual([chunk]);
    expect(new CommandGate(1).push(chunk).forward[0]).toBe(chunk);
  });

  it('without an audit (head length 0) reports only interceptions, wherever the stream is cut', () => {
    const input = Buffer.concat([query('select 1'), changeUser, query('select 2')]);
    for (const size of [input.length, 3, 1]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < input.length; at += size) chunks.push(input.subarray(at, at + size));
      const result = run(new CommandGate(0), chunks);
      expect(result.events.map((e) => e.type)).toEqual(['intercepted']);
      expect(result.forwarded.equals(Buffer.concat([query('select 1'), query('select 2')]))).toBe(true);
    }
  });

  it('keeps only the head of a packet longer than 16 MiB and reports its whole length', () => {
    const sql = `select '${'x'.repeat(MAX_PHYSICAL_PAYLOAD + 10)}'`;
    const packet = query(sql);
    const gate = new CommandGate(16);
    const chunks: Buffer[] = [];
    for (let at = 0; at < packet.length; at += 65_536) chunks.push(packet.subarray(at, at + 65_536));
    const result = run(gate, chunks);
    expect(result.forwarded.equals(packet)).toBe(true);
    // Only the audit's head is kept of a forwarded command (intercepted ones get INTERCEPTED_HEAD_LENGTH).
    expect(result.events).toEqual([{ type: 'command', head: comQuery(sql, 0).subarray(0, 16), length: sql.length + 1 }]);
  });

  it('keeps no more of a split forwarded command than the audit asks, and an intercepted one whole', () => {
    const sql = `select '${'x'.repeat(10_000)}'`;
    const attributes = Buffer.alloc(INTERCEPTED_HEAD_LENGTH - 100, 0x61);
    const bigChangeUser = encodePacket(0, Buffer.concat([Buffer.from([Command.ChangeUser]), attributes]));
    const input = Buffer.concat([query(sql), bigChangeUser]);
    const chunks: Buffer[] = [];
    for (let at = 0; at < input.length; at += 1000) chunks.push(input.subarray(at, at + 1000));
    const result = run(new CommandGate(8), chunks);
    expect(result.events[0]).toEqual({ type: 'command', head: comQuery(sql, 0).subarray(0, 8), length: sql.length + 1 });
    const intercepted = result.events[1];
    expect(intercepted?.type === 'intercepted' && intercepted.payload.equals(bigChangeUser.subarray(4))).toBe(true);
  });

  it('does not take LOCAL INFILE data whose sequence ids wrap to 0 for a command', () => {
    const data: Buffer[] = [];
    for (let i = 0; i < 300; i++) data.push(encodePacket((2 + i) & 0xff, Buffer.from([Command.ChangeUser, i & 0xff, 1, 2])));
    data.push(encodePacket((2 + 300) & 0xff, Buffer.alloc(0)));
    const input = Buffer.concat([query("load data local infile 'x' into table t"), ...data, changeUser]);
    for (const size of [input.length, 7, 1]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < input.length; at += size) chunks.push(input.subarray(at, at + size));
      const result = run(new CommandGate(8), chunks);
      expect(result.forwarded).toEqual(input.subarray(0, input.length - changeUser.length));
      expect(result.events.map((e) => e.type)).toEqual(['command', 'intercepted']);
    }
  });

  it('stops after an intercepted command: the bytes after it come back as rest, not forwarded', () => {
    const after = query('select 3');
    const result = new CommandGate(0).push(Buffer.concat([query('select 1'), changeUser, after]));
    expect(Buffer.concat(result.forward)).toEqual(query('select 1'));
    expect(result.events.map((e) => e.type)).toEqual(['intercepted']);
    expect(result.rest).toEqual(after);
  });

  it('throws MySqlProtocolError on continuation packets out of order', () => {
    const first = Buffer.alloc(4 + MAX_PHYSICAL_PAYLOAD);
    first.writeUIntLE(MAX_PHYSICAL_PAYLOAD, 0, 3);
    first[4] = Command.Query;
    const gate = new CommandGate(8);
    gate.push(first);
    expect(() => gate.push(Buffer.from([1, 0, 0, 7, 0x41]))).toThrow(MySqlProtocolError);
  });
});

describe('CommandGate with a query rewrite (KILL translation)', () => {
  const threads = new Map([[0x8000_0007, 42]]);
  const kill = (payload: Buffer) => translateKill(payload, 0, (minted) => threads.get(minted));
  const longQuery = query(`select '${'x'.repeat(300)}'`);
  const stream = [query('select 1'), query('KILL QUERY 2147483655'), longQuery, query('kill 2147483655;'), query('KILL QUERY 12'), changeUser, query('select 2')];
  const input = Buffer.concat(stream);
  const expected = Buffer.concat([query('select 1'), query('KILL QUERY 42'), longQuery, query('kill 42;'), query('KILL QUERY 12'), query('select 2')]);

  it('rewrites a KILL of a minted id at every split, passing everything else as it came', () => {
    const whole = run(new CommandGate(64, undefined, kill), [input]);
    expect(whole.forwarded).toEqual(expected);
    for (let a = 0; a <= input.length; a += 3) {
      for (let b = a; b <= input.length; b += 11) {
        const split = run(new CommandGate(64, undefined, kill), [input.subarray(0, a), input.subarray(a, b), input.subarray(b)]);
        expect(split.forwarded).toEqual(expected);
        expect(split.events).toEqual(whole.events);
      }
    }
    expect(run(new CommandGate(0, undefined, kill), [...input].map((byte) => Buffer.from([byte]))).forwarded).toEqual(expected);
  });
});

describe('translateKill', () => {
  const threadOf = (minted: number) => (minted === 0x8000_0001 ? 77 : undefined);
  const sql = (text: string, capabilities = 0) => translateKill(comQuery(text, capabilities), capabilities, threadOf)?.subarray(1).toString();

  it('translates every KILL form naming a minted id, and nothing else', () => {
    expect(sql('KILL 2147483649')).toBe('KILL 77');
    expect(sql('  kill query 2147483649 ; ')).toBe('  kill query 77 ; ');
    expect(sql('KILL HARD CONNECTION 2147483649')).toBe('KILL HARD CONNECTION 77');
    expect(sql('KILL SOFT QUERY 2147483649')).toBe('KILL SOFT QUERY 77');
    expect(sql('KiLl QuErY 2147483649')).toBe('KiLl QuErY 77'); // any case, as the server reads it
    expect(sql('KILL QUERY 2147483650')).toBeUndefined(); // not a session's id
    expect(sql('KILL QUERY ID 2147483649')).toBeUndefined(); // MariaDB's query id, not a connection
    expect(sql('KILL USER bob')).toBeUndefined();
    expect(sql('select 2147483649')).toBeUndefined();
    expect(sql('KILL QUERY 2147483649; drop table t')).toBeUndefined();
  });

  it('keeps an empty query-attribute block when the client has CLIENT_QUERY_ATTRIBUTES', () => {
    const payload = comQuery('KILL QUERY 2147483649', Capability.QueryAttributes);
    const out = translateKill(payload, Capability.QueryAttributes, threadOf)!;
    expect(out.subarray(0, payload.length - 'KILL QUERY 2147483649'.length)).toEqual(payload.subarray(0, payload.length - 'KILL QUERY 2147483649'.length));
    expect(out.subarray(payload.length - 'KILL QUERY 2147483649'.length).toString()).toBe('KILL QUERY 77');
  });
});
