import { describe, expect, it } from 'vitest';
import { mayAffectSession, sqlSessionEffects } from '../../../../src/broker/postgres/pool/pin-scanner.js';

/** What the byte check says of `sql` in a larger buffer, as the relay finds it in a chunk. */
function mayAffect(sql: string): boolean {
  const bytes = Buffer.concat([Buffer.from('set;'), Buffer.from(sql), Buffer.from('listen')]);
  return mayAffectSession(bytes, 4, bytes.length - 6);
}

/** The pins of `sql`, checked to be seen by the byte check the relay runs first (which must never miss one). */
function pins(sql: string) {
  const effects = sqlSessionEffects(sql);
  if (effects.pins.length > 0 || effects.resetsSession) expect(mayAffect(sql), sql).toBe(true);
  return effects.pins;
}

describe('sqlSessionEffects: what pins a client to its server connection', () => {
  it.each([
    ['listen jobs', 'listen'],
    ['LISTEN "Jobs"', 'listen'],
    ["set work_mem = '8MB'", 'set'],
    ['SET SESSION statement_timeout TO 5', 'set'],
    ['set role reporting', 'set'],
    ['set session authorization alice', 'set'],
    ['set session characteristics as transaction read only', 'set'],
    ['reset work_mem', 'set'],
    ['RESET ALL', 'set'],
    ["select set_config('work_mem', '8MB', false)", 'set'],
    ["select pg_catalog.set_config('a.b', 'c', $1)", 'set'],
    ["select set_config('a.b', 'c', 'off')", 'set'],
    ['select pg_advisory_lock(1)', 'advisory_lock'],
    ['select pg_try_advisory_lock(1, 2)', 'advisory_lock'],
    ['SELECT PG_ADVISORY_LOCK_SHARED(7)', 'advisory_lock'],
    ['prepare two as select 2', 'prepare'],
    ['create temp table t (n int)', 'temp_object'],
    ['CREATE TEMPORARY VIEW v AS SELECT 1', 'temp_object'],
    ['create or replace temp view v as select 1', 'temp_object'],
    ['create global temporary sequence s', 'temp_object'],
    ['create local temp table t (n int)', 'temp_object'],
    ['select 1 into temp table t', 'temp_object'],
    ['declare c cursor with hold for select 1', 'cursor_with_hold'],
    ['DECLARE c BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT 1', 'cursor_with_hold'],
  ])('%s → %s', (sql, reason) => {
    expect(pins(sql)).toEqual([reason]);
  });

  it.each([
    'select 1',
    "set local work_mem = '8MB'",
    'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    'set constraints all deferred',
    "select set_config('work_mem', '8MB', true)",
    "select set_config('work_mem', '8MB', 't')",
    'select pg_advisory_xact_lock(1)',
    'select pg_try_advisory_xact_lock(1)',
    'select pg_advisory_unlock(1)',
    "prepare transaction 'x'",
    'create table t (n int)',
    'create unlogged table temp (n int)',
    'declare c cursor for select 1',
    'declare c cursor without hold for select 1',
    'insert into temp values (1)',
    'notify jobs',
    'unlisten *',
    'begin; commit',
  ])('%s pins nothing', (sql) => {
    expect(pins(sql)).toEqual([]);
  });

  it.each([
    ["select 'listen x; set a = 1'", 'a string literal'],
    ["select E'it\\'s; listen x'", 'an E string with an escaped quote'],
    ["select e'\\\\'; select 1", 'an E string ending in an escaped backslash'],
    ["select 'it''s; set a=1'", 'a doubled quote'],
    ["select U&'listen x'", 'a U& string'],
    ['select $$; listen x; $$', 'a dollar-quoted body'],
    ['select $fn$ set work_mem = 1 $x$ still inside $fn$', 'a tagged dollar quote with another tag inside'],
    ['select "pg_advisory_lock"(1)', 'a quoted identifier'],
    ['select 1 as "listen; set a = 1"', 'a quoted identifier with a semicolon'],
    ['select 1 -- ; listen x', 'a line comment'],
    ['select 1 /* ; listen x /* nested */ set a = 1; */', 'a nested block comment'],
    ['select my_pg_advisory_lock(1)', 'a longer function name'],
    ['select pg_advisory_lock', 'a column named like the function'],
    ['select $1::text as prepare', 'a parameter and an alias'],
    ['create function f() returns void language sql as $$ select pg_advisory_lock(1) $$', 'a function body'],
  ])('a word inside %s pins nothing (%s)', (sql) => {
    expect(pins(sql)).toEqual([]);
  });

  it('finds every statement of a multi-statement query, each reason once', () => {
    expect(pins("select 1; listen a;; set x.y = 'z'; listen b; select pg_advisory_lock(2)")).toEqual(['listen', 'set', 'advisory_lock']);
    expect(pins("select ';'; /* ; */ listen a")).toEqual(['listen']);
    expect(pins('select 1;\nprepare p as select 1')).toEqual(['prepare']);
  });

  it('keeps going after an unterminated literal or comment without finding anything in it', () => {
    expect(pins("select 'listen x")).toEqual([]);
    expect(pins('select 1 /* listen x')).toEqual([]);
    expect(pins('select $$ listen x')).toEqual([]);
  });

  it('reports session resets (DISCARD ALL, DEALLOCATE ALL) apart from pins', () => {
    expect(sqlSessionEffects('discard all')).toEqual({ pins: [], resetsSession: true });
    expect(sqlSessionEffects('DEALLOCATE ALL').resetsSession).toBe(true);
    expect(sqlSessionEffects('deallocate prepare all').resetsSession).toBe(true);
    expect(sqlSessionEffects('discard plans').resetsSession).toBe(false);
    expect(sqlSessionEffects("select 'discard all'").resetsSession).toBe(false);
  });

  it('reads the words that may pin on the bytes, never missing one, and lets UPDATE … SET and words that only contain "set" pass undecoded', () => {
    const mayPin = [
      'LISTEN x',
      'set x = 1',
      '  SeT x = 1',
      'select 1; set x = 1',
      'RESET all',
      'select 1;\treset x',
      "select set_config('a', 'b', false)",
      "select 1set_config('a', 'b', false)",
      'select 1 -- c\nset x = 1',
      '/* c */ set x = 1',
      '\u00a0set x = 1',
      '\ufeffreset x',
      'create TEMPORARY table t()',
      'declare c cursor with HOLD for select 1',
      'select pg_advisory_lock(1)',
      'DISCARD ALL',
      'dealloCATE all',
      'prepare p as select 1',
      'select \u00e9set',
    ];
    const passes = [
      'select 1',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 1',
      'UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = 3',
      'update t set a = 1; update u\nset b = 2',
      "update t set a = 'x' where b = \"set\"",
      'select offset_, settings, 1set, x$set, reset_val from t offset 1',
      'select 1reset',
      'insert into t (a) select "set"',
      'sel\u00e9ct \u017fet',
      'se',
      'tem',
      '\u{1f600}',
    ];
    for (const sql of mayPin) expect(mayAffect(sql), sql).toBe(true);
    for (const sql of passes) {
      expect(mayAffect(sql), sql).toBe(false);
      expect(sqlSessionEffects(sql), sql).toEqual({ pins: [], resetsSession: false });
    }
    // Every statement that does pin or reset is seen (checked in pins() above for each case too).
    for (const sql of mayPin) if (sqlSessionEffects(sql).pins.length > 0 || sqlSessionEffects(sql).resetsSession) expect(mayAffect(sql)).toBe(true);
  });

  it('never misses a pin or reset in SQL made up of the pieces that matter to the byte check (seeded)', () => {
    const pieces = ['set', 'SeT', 'reset', 'set_config', '(', ';', ' ', '\n', '\t', '\u00a0', '\ufeff', '--', '/*', '*/', "'", '"', '$$', 'x', '1', '$', '_', 'E', '\u00e9', 'discard all'];
    // mulberry32: the same SQL every run.
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n;
    };
    let pinned = 0;
    for (let i = 0; i < 50_000; i++) {
      let sql = '';
      for (let n = 1 + Math.floor(random(6)); n > 0; n--) sql += pieces[Math.floor(random(pieces.length))];
      const effects = sqlSessionEffects(sql);
      if (effects.pins.length > 0 || effects.resetsSession) {
        pinned++;
        expect(mayAffect(sql), JSON.stringify(sql)).toBe(true);
      }
    }
    expect(pinned).toBeGreaterThan(1000);
  });
});
