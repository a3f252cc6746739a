import { describe, expect, it } from 'vitest';
import { MAY_PIN, commandPin, scanQuery, statements } from '../../../../src/broker/mysql/pool/session-pins.js';
import { Command } from '../../../../src/broker/mysql/codec/commands.js';

const pin = (sql: string) => scanQuery(sql).pin;

describe('scanQuery (what pins a client to its server connection in transaction mode)', () => {
  it.each([
    ["set names utf8mb4", 'set'],
    ["SET SESSION sql_mode = 'ANSI'", 'set'],
    ['set autocommit = 0', 'set'],
    ['set session transaction isolation level serializable', 'set'],
    ["set @x = 1", 'user-variable'],
    ['select @x := 1', 'user-variable'],
    ['select 1 into @x', 'user-variable'],
    ["select @`odd name`", 'user-variable'],
    ['create temporary table t (n int)', 'temporary-table'],
    ['CREATE /* why */ TEMPORARY TABLE t (n int)', 'temporary-table'],
    ['lock tables t write', 'lock-tables'],
    ['flush tables with read lock', 'lock-tables'],
    ["select get_lock('k', 1)", 'get-lock'],
    ['select sql_calc_found_rows * from t limit 1', 'found-rows'],
    ['select found_rows()', 'found-rows'],
    ['select last_insert_id()', 'last-insert-id'],
    ["prepare s from 'select 1'", 'prepare'],
    ['execute s', 'prepare'],
    ['deallocate prepare s', 'prepare'],
    ['use shop', 'use'],
    ['call p()', 'call'],
    ["xa start 'x'", 'xa'],
    ['/*!40101 SET NAMES utf8 */', 'set'],
    ['select 1; set @x = 2', 'user-variable'],
  ])('pins %s (%s)', (sql, reason) => {
    expect(pin(sql)).toBe(reason);
  });

  it.each([
    'select 1',
    "select 'set @x = 1', \"lock tables\", `last_insert_id`",
    "select 1 -- set @x = 1\n",
    "select 1 # get_lock('a', 1)",
    "select /* create temporary table */ 1",
    'select @@session.sql_mode, @@autocommit',
    "insert into t (a) values ('it''s', 'back\\'slash @x')",
    'begin',
    'start transaction',
    'commit',
    'select * from t for update',
    'select 1 /*+ SET_VAR(sort_buffer_size = 16M) */',
    'update t set a = 1 where id = 2',
    'show warnings',
  ])('does not pin %s', (sql) => {
    expect(pin(sql)).toBeUndefined();
  });

  it('holds the connection through the next transaction after SET TRANSACTION, without pinning', () => {
    expect(scanQuery('set transaction isolation level serializable')).toEqual({ holdForNextTransaction: true });
    expect(scanQuery('select 1')).toEqual({ holdForNextTransaction: false });
  });
});

describe('MAY_PIN (the prefilter before scanning)', () => {
  /** Every word a pin or hold rule of session-pins.ts keys on. */
  const RULE_WORDS = ['@', 'SET', 'TEMPORARY', 'PREPARE', 'EXECUTE', 'DEALLOCATE', 'USE', 'LOCK', 'HANDLER', 'XA', 'CALL', 'GET_LOCK', 'FOUND_ROWS', 'SQL_CALC_FOUND_ROWS', 'LAST_INSERT_ID'];
  const PIECES = [...RULE_WORDS, 'select', 'from', 't', '1', ' ', ';', "'", '`', '/*!', '*/', '-- ', '\n', 'ſ', 'ß', 'ﬆ', 'ı', 'laﬆ_insert_id', 'ſet', 'handler', 'K', 'é'];

  it('never hides a token a rule keys on, whatever the case and the characters that upper-case to ASCII', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 20_000; round++) {
      let sql = '';
      for (let i = random(6); i >= 0; i--) {
        const piece = PIECES[random(PIECES.length)]!;
        sql += random(2) === 0 ? piece.toLowerCase() : piece;
      }
      const tokens = statements(sql).flat();
      if (tokens.some((token) => RULE_WORDS.includes(token))) expect(MAY_PIN.test(sql), sql).toBe(true);
    }
  });

  it('lets plain queries skip the scan', () => {
    expect(MAY_PIN.test('select a, b from t where id = 1')).toBe(false);
    expect(MAY_PIN.test('insert into t values (1)')).toBe(false);
  });
});

describe('commandPin', () => {
  it('pins COM_INIT_DB, statements, COM_CHANGE_USER, COM_SET_OPTION and unknown commands; not queries, pings, resets', () => {
    expect(commandPin(Command.InitDb)).toBe('use');
    expect(commandPin(Command.StmtPrepare)).toBe('prepared-statement');
    expect(commandPin(Command.ChangeUser)).toBe('change-user');
    expect(commandPin(Command.SetOption)).toBe('set-option');
    expect(commandPin(Command.BinlogDump)).toBe('command');
    expect(commandPin(Command.Query)).toBeUndefined();
    expect(commandPin(Command.Ping)).toBeUndefined();
    expect(commandPin(Command.ResetConnection)).toBeUndefined();
  });
});
