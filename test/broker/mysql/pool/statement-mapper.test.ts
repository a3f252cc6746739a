import { describe, expect, it, vi } from 'vitest';
import { Command } from '../../../../src/broker/mysql/codec/commands.js';
import { Capability } from '../../../../src/broker/mysql/codec/constants.js';
import { encodePacket } from '../../../../src/broker/mysql/codec/packets.js';
import { StatementMapper, type ConnectionStatements } from '../../../../src/broker/mysql/pool/statement-mapper.js';

const CAPS = Capability.Protocol41 | Capability.SecureConnection;
const IDLE = { idle: true, infile: false };
const SQL = 'select ? + ? as sum';

const connection = (): ConnectionStatements => ({ prepared: new Map() });
const prepare = (sql = SQL): Buffer => encodePacket(0, Buffer.concat([Buffer.from([Command.StmtPrepare]), Buffer.from(sql)]));

function prepareOk(id: number, columns: number, params: number): Buffer {
  const ok = Buffer.alloc(12);
  ok.writeUInt32LE(id, 1);
  ok.writeUInt16LE(columns, 5);
  ok.writeUInt16LE(params, 7);
  return ok;
}

/** PREPARE_OK, then the parameter definitions and their EOF, then the column's and its EOF (no CLIENT_DEPRECATE_EOF). */
function prepareAnswer(id: number): Buffer {
  const eof = Buffer.from([0xfe, 0, 0, 2, 0]);
  const payloads = [prepareOk(id, 1, 2), Buffer.from('param-a'), Buffer.from('param-b'), eof, Buffer.from('column-sum'), eof];
  return Buffer.concat(payloads.map((p, i) => encodePacket(i + 1, p)));
}

/** COM_STMT_EXECUTE of a 2-parameter statement: LONGLONG values, types sent when `types`. */
function execute(id: number, types: boolean, values: [number, number] = [40, 2]): Buffer {
  const head = Buffer.alloc(10);
  head[0] = Command.StmtExecute;
  head.writeUInt32LE(id, 1);
  head.writeUInt32LE(1, 6);
  const body = [head, Buffer.from([0]), Buffer.from([types ? 1 : 0])];
  if (types) body.push(Buffer.from([8, 0, 8, 0]));
  for (const v of values) {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v));
    body.push(b);
  }
  return encodePacket(0, Buffer.concat(body));
}

function stmt(command: Command, id: number, rest: Buffer = Buffer.alloc(0)): Buffer {
  const p = Buffer.alloc(5);
  p[0] = command;
  p.writeUInt32LE(id, 1);
  return encodePacket(0, Buffer.concat([p, rest]));
}

const OK = encodePacket(1, Buffer.from([0, 0, 0, 2, 0, 0, 0]));

/** A mapper whose client prepared SQL as its statement 1 on `on`, where the server calls it `serverId`. */
function prepared(on: ConnectionStatements, serverId: number, max = 10): StatementMapper {
  const mapper = new StatementMapper(max, CAPS);
  mapper.fromClient(prepare(), on, IDLE);
  mapper.fromServer(prepareAnswer(serverId), on, true);
  return mapper;
}

/** Both halves of `bytes` split at `at`, through `feed`. */
function split<T>(bytes: Buffer, at: number, feed: (chunk: Buffer) => T): T[] {
  return [feed(bytes.subarray(0, at)), feed(bytes.subarray(at))];
}

describe('StatementMapper', () => {
  it('sends a client prepare as it is and answers with azdb\'s id, the definitions untouched, split anywhere', () => {
    const answer = prepareAnswer(77);
    const expected = Buffer.from(answer);
    expected.writeUInt32LE(1, 5);
    for (let at = 0; at <= answer.length; at++) {
      const on = connection();
      const mapper = new StatementMapper(10, CAPS);
      expect(Buffer.concat(split(prepare(), Math.min(at, prepare().length), (c) => mapper.fromClient(c, on, IDLE)).flat())).toEqual(prepare());
      expect(mapper.holding).toBe(true);
      const replies = split(answer, at, (c) => mapper.fromServer(c, on, true));
      expect(Buffer.concat(replies.flatMap((r) => r.toClient))).toEqual(expected);
      expect(replies.flatMap((r) => r.toServer)).toEqual([]);
      expect([...on.prepared.values()]).toEqual([77]);
      expect(mapper.holding).toBe(false);
    }
  });

  it('mints ids 1, 2, … per client whatever the server numbers', () => {
    const on = connection();
    const mapper = new StatementMapper(10, CAPS);
    const ids: number[] = [];
    for (const [sql, serverId] of [['select 1', 9], ['select 2', 3]] as const) {
      mapper.fromClient(prepare(sql), on, IDLE);
      const reply = Buffer.concat(mapper.fromServer(prepareAnswer(serverId), on, true).toClient);
      ids.push(reply.readUInt32LE(5));
    }
    expect(ids).toEqual([1, 2]);
  });

  it('rewrites an execute to the connection\'s id, split anywhere', () => {
    const bytes = execute(1, true);
    const expected = execute(77, true);
    for (let at = 0; at <= bytes.length; at++) {
      const on = connection();
      const mapper = prepared(on, 77);
      const out = split(bytes, at, (c) => mapper.fromClient(c, on, IDLE)).flat();
      expect(Buffer.concat(out)).toEqual(expected);
    }
  });

  it('re-prepares on a connection that lacks the statement, swallows that answer, then sends the execute with the new id', () => {
    const answer = prepareAnswer(5);
    for (let at = 0; at <= answer.length; at++) {
      const mapper = prepared(connection(), 77);
      const other = connection();
      expect(mapper.fromClient(execute(1, true), other, IDLE)).toEqual([prepare()]);
      const replies = split(answer, at, (c) => mapper.fromServer(c, other, true));
      expect(replies.flatMap((r) => r.toClient).filter((b) => b.length > 0)).toEqual([]);
      expect(Buffer.concat(replies.flatMap((r) => r.toServer))).toEqual(execute(5, true));
      expect(other.prepared.get(Buffer.from(SQL).toString('latin1'))).toBe(5);
    }
  });

  it('answers the client\'s command with the ERR of a re-prepare that failed, and sends nothing more', () => {
    const mapper = prepared(connection(), 77);
    const other = connection();
    mapper.fromClient(execute(1, true), other, IDLE);
    const err = encodePacket(1, Buffer.concat([Buffer.from([0xff, 0x7a, 0x04, 0x23]), Buffer.from("42S02Table 'shop.gone' doesn't exist")]));
    const reply = mapper.fromServer(err, other, true);
    expect(reply.toClient).toEqual([err]);
    expect(reply.toServer).toEqual([]);
    expect(other.prepared.size).toBe(0);
    expect(mapper.holding).toBe(false);
  });

  it('sends again the types an execute relies on ("new params bound" 0), which the connection may never have had', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    expect(mapper.fromClient(execute(1, true), on, IDLE)).toEqual([execute(77, true)]);
    expect(mapper.fromClient(execute(1, false, [3, 4]), on, IDLE)).toEqual([execute(77, true, [3, 4])]);
  });

  it('waits for earlier answers before a prepare, so that the prepare\'s answer is the next thing the server sends', () => {
    const on = connection();
    const mapper = new StatementMapper(10, CAPS);
    expect(mapper.fromClient(prepare(), on, { idle: false, infile: false })).toEqual([]);
    expect(mapper.holding).toBe(true);
    const reply = mapper.fromServer(OK, on, true);
    expect(reply.toClient).toEqual([OK]);
    expect(reply.toServer).toEqual([prepare()]);
  });

  it('queues the client\'s bytes behind a prepare until its answer, then sends them mapped', () => {
    const on = connection();
    const mapper = new StatementMapper(10, CAPS);
    expect(mapper.fromClient(Buffer.concat([prepare(), execute(1, true)]), on, IDLE)).toEqual([prepare()]);
    expect(mapper.fromServer(prepareAnswer(42), on, true).toServer).toEqual([execute(42, true)]);
  });

  it('only forgets a closed statement (others may share it on the server), and the server refuses its id afterwards', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    expect(mapper.fromClient(stmt(Command.StmtClose, 1), on, IDLE)).toEqual([]);
    expect(on.prepared.size).toBe(1);
    expect(mapper.fromClient(execute(1, true), on, IDLE)).toEqual([execute(0, true)]);
  });

  it('rewrites reset, fetch and long data, and keeps the connection from long data until the execute', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    const data = Buffer.from([0, 0, 1, 2, 3]);
    expect(mapper.fromClient(stmt(Command.StmtSendLongData, 1, data), on, IDLE)).toEqual([stmt(Command.StmtSendLongData, 77, data)]);
    expect(mapper.holding).toBe(true);
    expect(mapper.fromClient(execute(1, true), on, IDLE)).toEqual([execute(77, true)]);
    expect(mapper.holding).toBe(false);
    const rows = Buffer.from([10, 0, 0, 0]);
    expect(mapper.fromClient(stmt(Command.StmtFetch, 1, rows), on, IDLE)).toEqual([stmt(Command.StmtFetch, 77, rows)]);
    expect(mapper.fromClient(stmt(Command.StmtReset, 1), on, IDLE)).toEqual([stmt(Command.StmtReset, 77)]);
  });

  it('passes a 4 MiB long-data packet arriving in 64 KiB chunks on intact, joining its chunks once', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    const data = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const packet = stmt(Command.StmtSendLongData, 1, Buffer.concat([Buffer.from([0, 0]), data]));
    const concat = vi.spyOn(Buffer, 'concat');
    const out: Buffer[] = [];
    try {
      for (let at = 0; at < packet.length; at += 64 * 1024) {
        out.push(...mapper.fromClient(packet.subarray(at, at + 64 * 1024), on, IDLE));
        if (at + 64 * 1024 < packet.length) expect(out).toEqual([]);
      }
      // Re-joining the inbox per chunk would copy the packet 64 times over.
      expect(concat.mock.calls.length).toBeLessThanOrEqual(2);
    } finally {
      concat.mockRestore();
    }
    expect(Buffer.concat(out).equals(stmt(Command.StmtSendLongData, 77, Buffer.concat([Buffer.from([0, 0]), data])))).toBe(true);
    expect(mapper.holding).toBe(true);
  });

  it('keeps the connection while a cursor is open, until the statement is reset', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    const withCursor = execute(1, true);
    withCursor[4 + 5] = 0x01;
    mapper.fromClient(withCursor, on, IDLE);
    expect(mapper.holding).toBe(true);
    mapper.fromClient(stmt(Command.StmtReset, 1), on, IDLE);
    expect(mapper.holding).toBe(false);
  });

  it('lets the connection go when a statement with long data or a cursor is closed', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    mapper.fromClient(stmt(Command.StmtSendLongData, 1, Buffer.from([0, 0, 9])), on, IDLE);
    const withCursor = execute(1, true);
    withCursor[4 + 5] = 0x01;
    mapper.fromClient(withCursor, on, IDLE);
    expect(mapper.holding).toBe(true);
    mapper.fromClient(stmt(Command.StmtClose, 1), on, IDLE);
    expect(mapper.holding).toBe(false);
  });

  it('closes the least recently used server statement past max_prepared_statements', () => {
    const on = connection();
    const mapper = new StatementMapper(1, CAPS);
    mapper.fromClient(prepare('select 1'), on, IDLE);
    mapper.fromServer(prepareAnswer(7), on, true);
    mapper.fromClient(prepare('select 2'), on, IDLE);
    expect(mapper.fromServer(prepareAnswer(8), on, true).toServer).toEqual([stmt(Command.StmtClose, 7)]);
    expect(mapper.fromClient(execute(2, true), on, IDLE)).toEqual([execute(8, true)]);
    expect([...on.prepared.values()]).toEqual([8]);
  });

  it('passes other commands through untouched, split anywhere, and sends a prepare after them only once answered', () => {
    const query = encodePacket(0, Buffer.concat([Buffer.from([Command.Query]), Buffer.from('select 1')]));
    const bytes = Buffer.concat([query, prepare()]);
    for (let at = 0; at <= bytes.length; at++) {
      const on = connection();
      const mapper = new StatementMapper(10, CAPS);
      // As the relay's tracker says: not idle once the query went out.
      let sent = 0;
      const out = split(bytes, at, (c) => {
        const parts = mapper.fromClient(c, on, { idle: sent === 0, infile: false });
        sent += parts.reduce((n, p) => n + p.length, 0);
        return parts;
      }).flat();
      expect(Buffer.concat(out)).toEqual(query);
      expect(mapper.fromServer(OK, on, true).toServer).toEqual([prepare()]);
    }
  });

  it('forgets the client\'s statements and the connection\'s on COM_RESET_CONNECTION, which drops them on the server', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    const reset = encodePacket(0, Buffer.from([Command.ResetConnection]));
    expect(mapper.fromClient(reset, on, IDLE)).toEqual([reset]);
    expect(on.prepared.size).toBe(0);
    expect(mapper.fromClient(execute(1, true), on, { idle: true, infile: false })).toEqual([execute(0, true)]);
  });

  it('passes LOCAL INFILE data through, even packets that look like statement commands', () => {
    const on = connection();
    const mapper = prepared(on, 77);
    const data = Buffer.concat([encodePacket(0, Buffer.from([Command.StmtExecute, 1, 0, 0, 0])), encodePacket(1, Buffer.alloc(0))]);
    expect(Buffer.concat(mapper.fromClient(data, on, { idle: false, infile: true }))).toEqual(data);
    expect(mapper.fromClient(execute(1, true), on, IDLE)).toEqual([execute(77, true)]);
  });
});
