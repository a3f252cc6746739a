import { beforeAll, describe, expect, it } from 'vitest';
import { cstring, encodeMessage, int32 } from '../../../../src/broker/postgres/codec/frames.js';
import { FrameDecoder } from '../../../../src/broker/postgres/codec/frame-decoder.js';
import { encodeReadyForQuery } from '../../../../src/broker/postgres/codec/messages.js';
import { StatementMapper, type ConnectionStatements } from '../../../../src/broker/postgres/pool/statement-mapper.js';

const msg = (code: string, ...parts: Buffer[]) => encodeMessage(code.charCodeAt(0), ...parts);
const types = (...oids: number[]) => Buffer.concat([Buffer.from([0, oids.length]), ...oids.map(int32)]);
const parse = (name: string, sql: string, ...oids: number[]) => msg('P', cstring(name), cstring(sql), types(...oids));
/** Bind of one text parameter, results in text. */
const bind = (statement: string, value = '7', portal = '') =>
  msg('B', cstring(portal), cstring(statement), Buffer.from([0, 0, 0, 1]), int32(Buffer.byteLength(value)), Buffer.from(value), Buffer.from([0, 0]));
const describeStatement = (name: string) => msg('D', Buffer.from('S'), cstring(name));
const closeStatement = (name: string) => msg('C', Buffer.from('S'), cstring(name));
const execute = (portal = '') => msg('E', cstring(portal), int32(0));
const SYNC = msg('S');
const PARSE_COMPLETE = msg('1');
const BIND_COMPLETE = msg('2');
const CLOSE_COMPLETE = msg('3');
const COMMAND_COMPLETE = msg('C', cstring('SELECT 1'));
const READY = encodeReadyForQuery('I');
const ERROR = msg('E', Buffer.from('SERROR\0C26000\0Mnope\0\0'));

const connection = (): ConnectionStatements => ({ prepared: new Map() });

/** Whether toServer below asks `passes` first, as the relay does, or hands every message to toServer. */
let viaPasses = false;

/** The client's bytes, split in two at `at`, framed and mapped for `on`: what goes to the server. */
function toServer(mapper: StatementMapper, on: ConnectionStatements, bytes: Buffer, at: number): Buffer {
  const decoder = new FrameDecoder();
  const out: Buffer[] = [];
  for (const part of [bytes.subarray(0, at), bytes.subarray(at)]) {
    decoder.push(part);
    for (let frame = decoder.next(); frame; frame = decoder.next()) {
      const message = encodeMessage(frame.code, frame.payload);
      // Between other bytes, as the relay finds it in a chunk.
      const inChunk = Buffer.concat([Buffer.from([0, 0]), message, Buffer.from([0])]);
      if (viaPasses && mapper.passes(frame.code, inChunk, 2 + 5, 2 + message.length)) out.push(message);
      else out.push(...mapper.toServer(frame, on));
    }
  }
  return Buffer.concat(out);
}

/** The server's replies as the client sees them. */
function toClient(mapper: StatementMapper, replies: Buffer[]): Buffer[] {
  const decoder = new FrameDecoder();
  decoder.push(Buffer.concat(replies));
  const out: Buffer[] = [];
  for (let frame = decoder.next(); frame; frame = decoder.next()) {
    const verdict = mapper.fromServer(frame);
    if (verdict === true) out.push(encodeMessage(frame.code, frame.payload));
    else if (verdict !== false) out.push(verdict);
  }
  return out;
}

/** Runs `check` for every split offset of `bytes`, each with fresh state from `setup`. */
function atEverySplit<S>(bytes: Buffer, setup: () => S, check: (state: S, at: number) => void): void {
  for (let at = 0; at <= bytes.length; at++) check(setup(), at);
}

const only = (on: ConnectionStatements): string => {
  expect(on.prepared.size).toBe(1);
  return [...on.prepared.values()][0]!;
};

describe.each([false, true])('StatementMapper (passes asked first: %s)', (passesFirst) => {
  beforeAll(() => {
    viaPasses = passesFirst;
  });

  it('passes unnamed statements through byte for byte', () => {
    const bytes = Buffer.concat([parse('', 'select $1::int', 23), bind(''), describeStatement(''), execute(), closeStatement(''), SYNC]);
    atEverySplit(bytes, () => ({ mapper: new StatementMapper(10), on: connection() }), ({ mapper, on }, at) => {
      expect(toServer(mapper, on, bytes, at)).toEqual(bytes);
      expect(on.prepared.size).toBe(0);
      const replies = [PARSE_COMPLETE, BIND_COMPLETE, COMMAND_COMPLETE, CLOSE_COMPLETE, READY];
      expect(toClient(mapper, replies)).toEqual(replies);
    });
  });

  it("answers a second Parse of a name the client has with the server's 42P05 naming the client's statement, and keeps the first", () => {
    const mapper = new StatementMapper(10);
    const on = connection();
    toServer(mapper, on, Buffer.concat([parse('s1', 'select $1::int', 23), SYNC]), 0);
    toClient(mapper, [PARSE_COMPLETE, READY]);
    const name = only(on);
    const again = Buffer.concat([parse('s1', 'select 2'), bind('s1'), execute(), SYNC]);
    const empty = msg('P', cstring('azdb_duplicate'), cstring(''), Buffer.from([0, 0]));
    expect(toServer(mapper, on, again, 0)).toEqual(Buffer.concat([empty, empty, bind(name), execute(), SYNC]));
    const exists = (statement: string) => msg('E', Buffer.from(`SERROR\0C42P05\0Mprepared statement "${statement}" already exists\0Fprepare.c\0\0`));
    expect(toClient(mapper, [PARSE_COMPLETE, exists('azdb_duplicate'), READY])).toEqual([exists('s1'), READY]);
    // The throwaway stayed on the connection: this time the first Parse fails already.
    toServer(mapper, on, again, 0);
    expect(toClient(mapper, [exists('azdb_duplicate'), READY])).toEqual([exists('s1'), READY]);
    expect(toServer(mapper, on, Buffer.concat([bind('s1'), SYNC]), 0)).toEqual(Buffer.concat([bind(name), SYNC]));
  });

  it('renames a named Parse and its Bind and Describe to a server name', () => {
    const bytes = Buffer.concat([parse('s1', 'select $1::int', 23), describeStatement('s1'), bind('s1'), execute(), SYNC]);
    atEverySplit(bytes, () => ({ mapper: new StatementMapper(10), on: connection() }), ({ mapper, on }, at) => {
      const sent = toServer(mapper, on, bytes, at);
      const name = only(on);
      expect(name).toMatch(/^azdb_s_\d+$/);
      expect(sent).toEqual(Buffer.concat([parse(name, 'select $1::int', 23), describeStatement(name), bind(name), execute(), SYNC]));
    });
  });

  it("passes a client's Close of a portal or of the unnamed statement as it came, and its CloseComplete back in order with hidden replies", () => {
    const closePortal = msg('C', Buffer.from('P'), cstring('p1'));
    const closeUnnamed = closeStatement('');
    const later = Buffer.concat([closePortal, closeUnnamed, bind('s1', '42'), execute(), SYNC]);
    atEverySplit(later, () => {
      const mapper = new StatementMapper(10);
      toServer(mapper, connection(), Buffer.concat([parse('s1', 'select $1::int', 23), SYNC]), 0);
      toClient(mapper, [PARSE_COMPLETE, READY]);
      return { mapper, second: connection() };
    }, ({ mapper, second }, at) => {
      const sent = toServer(mapper, second, later, at);
      const name = only(second);
      expect(sent).toEqual(Buffer.concat([closePortal, closeUnnamed, parse(name, 'select $1::int', 23), bind(name, '42'), execute(), SYNC]));
      expect(toClient(mapper, [CLOSE_COMPLETE, CLOSE_COMPLETE, PARSE_COMPLETE, BIND_COMPLETE, COMMAND_COMPLETE, READY])).toEqual([CLOSE_COMPLETE, CLOSE_COMPLETE, BIND_COMPLETE, COMMAND_COMPLETE, READY]);
    });
  });

  it('prepares a statement again, first, on a connection that lacks it, and hides that ParseComplete', () => {
    const later = Buffer.concat([bind('s1', '42'), execute(), SYNC]);
    atEverySplit(later, () => {
      const mapper = new StatementMapper(10);
      const first = connection();
      toServer(mapper, first, Buffer.concat([parse('s1', 'select $1::int', 23), SYNC]), 0);
      toClient(mapper, [PARSE_COMPLETE, READY]);
      return { mapper, first, second: connection() };
    }, ({ mapper, first, second }, at) => {
      const sent = toServer(mapper, second, later, at);
      const name = only(second);
      expect(name).not.toBe(only(first));
      expect(sent).toEqual(Buffer.concat([parse(name, 'select $1::int', 23), bind(name, '42'), execute(), SYNC]));
      expect(toClient(mapper, [PARSE_COMPLETE, BIND_COMPLETE, COMMAND_COMPLETE, READY])).toEqual([BIND_COMPLETE, COMMAND_COMPLETE, READY]);
    });
  });

  it('shares a connection\'s statement between clients: a second Parse of the same text answers ParseComplete in order', () => {
    const on = connection();
    const a = new StatementMapper(10);
    toServer(a, on, Buffer.concat([parse('mine', 'select 1'), SYNC]), 0);
    toClient(a, [PARSE_COMPLETE, READY]);
    const name = only(on);
    const bytes = Buffer.concat([parse('', 'select 2'), parse('theirs', 'select 1'), bind('theirs'), execute(), SYNC]);
    atEverySplit(bytes, () => undefined, (_state, at) => {
      const fresh = new StatementMapper(10);
      const sent = toServer(fresh, on, bytes, at);
      expect(sent).toEqual(
        Buffer.concat([parse('', 'select 2'), msg('P', cstring('azdb_noop'), cstring(''), Buffer.from([0, 0])), closeStatement('azdb_noop'), bind(name), execute(), SYNC]),
      );
      expect(toClient(fresh, [PARSE_COMPLETE, PARSE_COMPLETE, CLOSE_COMPLETE, BIND_COMPLETE, COMMAND_COMPLETE, READY])).toEqual([PARSE_COMPLETE, PARSE_COMPLETE, BIND_COMPLETE, COMMAND_COMPLETE, READY]);
    });
    expect(only(on)).toBe(name);
  });

  it('keeps at most max statements per connection, closing the least recently used and hiding its CloseComplete', () => {
    const mapper = new StatementMapper(2);
    const on = connection();
    toServer(mapper, on, Buffer.concat([parse('a', 'select 1'), parse('b', 'select 2')]), 0);
    const [nameA, nameB] = [...on.prepared.values()];
    toServer(mapper, on, Buffer.concat([bind('a'), SYNC]), 0);
    toClient(mapper, [PARSE_COMPLETE, PARSE_COMPLETE, BIND_COMPLETE, READY]);
    // a was used last, so b goes.
    const sent = toServer(mapper, on, Buffer.concat([parse('c', 'select 3'), SYNC]), 0);
    const nameC = [...on.prepared.values()].find((n) => n !== nameA && n !== nameB)!;
    expect(sent).toEqual(Buffer.concat([closeStatement(nameB!), parse(nameC, 'select 3'), SYNC]));
    expect([...on.prepared.values()]).toEqual([nameA, nameC]);
    expect(toClient(mapper, [CLOSE_COMPLETE, PARSE_COMPLETE, READY])).toEqual([PARSE_COMPLETE, READY]);
    // b is prepared again when it is bound.
    const again = toServer(mapper, on, Buffer.concat([bind('b'), SYNC]), 0);
    const nameB2 = [...on.prepared.values()].at(-1)!;
    expect(again).toEqual(Buffer.concat([closeStatement(nameA!), parse(nameB2, 'select 2'), bind(nameB2), SYNC]));
  });

  it("answers a client's Close of its statement with the server's CloseComplete and keeps the statement", () => {
    const mapper = new StatementMapper(10);
    const on = connection();
    toServer(mapper, on, Buffer.concat([parse('s', 'select 1'), SYNC]), 0);
    toClient(mapper, [PARSE_COMPLETE, READY]);
    const name = only(on);
    const bytes = Buffer.concat([closeStatement('s'), SYNC]);
    expect(toServer(mapper, on, bytes, 3)).toEqual(Buffer.concat([closeStatement('azdb_closed'), SYNC]));
    expect(toClient(mapper, [CLOSE_COMPLETE, READY])).toEqual([CLOSE_COMPLETE, READY]);
    expect(only(on)).toBe(name);
    // The name is gone for the client: a Bind of it goes to the server as it is (and fails there).
    expect(toServer(mapper, on, Buffer.concat([bind('s'), SYNC]), 0)).toEqual(Buffer.concat([bind('s'), SYNC]));
  });

  it('forgets a statement the server did not confirm before an error', () => {
    const mapper = new StatementMapper(10);
    const on = connection();
    toServer(mapper, on, Buffer.concat([parse('bad', 'select nope'), bind('bad'), SYNC]), 0);
    expect(on.prepared.size).toBe(1);
    expect(toClient(mapper, [ERROR, READY])).toEqual([ERROR, READY]);
    expect(on.prepared.size).toBe(0);
    // The next exchange is mapped as usual.
    toServer(mapper, on, Buffer.concat([parse('good', 'select 1'), SYNC]), 0);
    expect(toClient(mapper, [PARSE_COMPLETE, READY])).toEqual([PARSE_COMPLETE, READY]);
    expect(on.prepared.size).toBe(1);
  });

  it("forgets the client's name of a statement whose Parse failed, as the server would", () => {
    const mapper = new StatementMapper(10);
    const on = connection();
    toServer(mapper, on, Buffer.concat([parse('bad', 'select nope'), SYNC]), 0);
    toClient(mapper, [ERROR, READY]);
    expect(toServer(mapper, on, Buffer.concat([bind('bad'), SYNC]), 0)).toEqual(Buffer.concat([bind('bad'), SYNC]));
    expect(on.prepared.size).toBe(0);
  });
});
