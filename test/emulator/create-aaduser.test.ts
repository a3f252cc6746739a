/**
 * The emulated MySQL front's own statement, `CREATE AADUSER`: the parser, and the tap that finds it
 * in the client's byte stream without holding anything else back, however the stream is cut.
 */
import { describe, expect, it } from 'vitest';
import { parseCreateAadUser, MAX_CREATE_AADUSER_TEXT } from '../../src/emulator/create-aaduser.js';
import { AadUserTap, type TapAction } from '../../src/emulator/aaduser-tap.js';
import { comQuery } from '../helpers/mysql-payloads.js';
import { MAX_PHYSICAL_PAYLOAD, encodePacket } from '../../src/broker/mysql/codec/packets.js';
import { createPrng, seedFromEnv } from '../helpers/prng.js';

const ID = '0b6c3a5e-7f1d-4c2a-9e8b-1d2c3b4a5f60';

describe('parseCreateAadUser', () => {
  it('reads the forms of Azure\'s docs', () => {
    expect(parseCreateAadUser(`CREATE AADUSER 'app' IDENTIFIED BY '${ID}';`)).toEqual({ type: 'create', user: 'app', identifiedBy: ID });
    expect(parseCreateAadUser("  create   aaduser \"ann@contoso.com\"  ")).toEqual({ type: 'create', user: 'ann@contoso.com', identifiedBy: undefined });
    expect(parseCreateAadUser(`Create AadUser 'o''brien'\nidentified\tby '${ID}' ;  `)).toEqual({ type: 'create', user: "o'brien", identifiedBy: ID });
  });

  it('leaves every other statement to MariaDB', () => {
    for (const sql of ['select 1', "CREATE USER 'x'", 'CREATE AADUSERS', "/* c */ CREATE AADUSER 'x'", '']) {
      expect(parseCreateAadUser(sql)).toEqual({ type: 'other' });
    }
  });

  it('says where a malformed statement goes wrong, as MySQL\'s syntax error does', () => {
    expect(parseCreateAadUser('CREATE AADUSER app')).toEqual({ type: 'syntax-error', near: 'app' });
    expect(parseCreateAadUser("CREATE AADUSER 'app' IDENTIFIED '1'")).toEqual({ type: 'syntax-error', near: "'1'" });
    expect(parseCreateAadUser("CREATE AADUSER 'app")).toMatchObject({ type: 'syntax-error' });
    expect(parseCreateAadUser("CREATE AADUSER 'app' IDENTIFIED BY 'x'; drop table t")).toEqual({ type: 'syntax-error', near: 'drop table t' });
    expect(parseCreateAadUser(`CREATE AADUSER '${'a'.repeat(MAX_CREATE_AADUSER_TEXT)}'`)).toMatchObject({ type: 'syntax-error' });
  });
});

describe('AadUserTap', () => {
  const CAPS = 0xffffffff;
  const query = (sql: string) => encodePacket(0, comQuery(sql, CAPS));
  const create = `CREATE AADUSER 'app' IDENTIFIED BY '${ID}'`;

  /** Feeds `stream` cut at `cuts`; returns the bytes passed on and the statements caught. */
  function feed(stream: Buffer, cuts: number[]): { forwarded: Buffer; statements: Array<Extract<TapAction, { type: 'statement' }>> } {
    const tap = new AadUserTap(CAPS);
    const forwarded: Buffer[] = [];
    const statements: Array<Extract<TapAction, { type: 'statement' }>> = [];
    let from = 0;
    for (const to of [...cuts, stream.length]) {
      for (const action of tap.push(stream.subarray(from, to))) {
        if (action.type === 'forward') forwarded.push(Buffer.from(action.bytes));
        else statements.push(action);
      }
      from = to;
    }
    return { forwarded: Buffer.concat(forwarded), statements };
  }

  it('catches the statement and passes everything else on byte for byte, wherever the stream is cut', () => {
    const before = query('select 1');
    const big = encodePacket(0, comQuery(`select '${'x'.repeat(70_000)}'`, CAPS)); // too long to be the statement: streamed
    const after = query("insert into t values ('CREATE AADUSER inside a string')");
    const stream = Buffer.concat([before, query(create), big, after]);
    const expected = Buffer.concat([before, big, after]);
    const whole = feed(stream, []);
    expect(whole.statements).toEqual([{ type: 'statement', sql: create, replySequenceId: 1 }]);
    expect(whole.forwarded.equals(expected)).toBe(true);
    for (let cut = 1; cut < before.length + query(create).length + 8; cut++) {
      const split = feed(stream, [cut]);
      expect(split.statements).toHaveLength(1);
      expect(split.forwarded.equals(expected)).toBe(true);
    }
    const prng = createPrng(seedFromEnv('AZDB_TAP_SEED'));
    for (let round = 0; round < 200; round++) {
      const cuts = [...new Set(Array.from({ length: 1 + prng.int(12) }, () => 1 + prng.int(stream.length - 1)))].sort((a, b) => a - b);
      const split = feed(stream, cuts);
      expect(split.statements.map((s) => s.sql)).toEqual([create]);
      expect(split.forwarded.equals(expected)).toBe(true);
    }
  });

  it('streams a packet it does not need whole, without holding it', () => {
    const big = encodePacket(0, comQuery(`select '${'y'.repeat(100_000)}'`, CAPS));
    const tap = new AadUserTap(CAPS);
    const first = tap.push(big.subarray(0, 10));
    expect(Buffer.concat(first.map((a) => (a.type === 'forward' ? a.bytes : Buffer.alloc(0)))).equals(big.subarray(0, 10))).toBe(true);
  });

  it('passes on a stream it cannot frame as it is, and everything after it: MariaDB judges it', () => {
    // A full-size packet continued by one whose sequence id does not follow: out of order.
    const broken = encodePacket(0, comQuery(`select '${'z'.repeat(MAX_PHYSICAL_PAYLOAD)}'`, CAPS));
    broken[4 + MAX_PHYSICAL_PAYLOAD + 3] = 9;
    const stream = Buffer.concat([query('select 1'), broken, query(create)]);
    for (const cuts of [[], [3], [MAX_PHYSICAL_PAYLOAD + 10, MAX_PHYSICAL_PAYLOAD + 20]]) {
      const result = feed(stream, cuts);
      expect(result.statements).toEqual([]);
      expect(result.forwarded.equals(stream)).toBe(true);
    }
  });

  it('reads LOCAL INFILE data whose sequence ids wrap to 0 as data, not as a command', () => {
    // Data packets numbered 2..255 then 0: that 0 follows a non-empty 255 and so is data.
    const data: Buffer[] = [];
    for (let seq = 2; seq <= 255; seq++) data.push(encodePacket(seq, Buffer.from('row\n')));
    const wrapped = encodePacket(0, comQuery(create, CAPS));
    const stream = Buffer.concat([...data, wrapped, encodePacket(1, Buffer.alloc(0)), query(create)]);
    const result = feed(stream, []);
    expect(result.statements).toHaveLength(1);
    expect(result.forwarded.equals(Buffer.concat([...data, wrapped, encodePacket(1, Buffer.alloc(0))]))).toBe(true);
  });
});
