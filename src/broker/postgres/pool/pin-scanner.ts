/**
 * What in a client's SQL cannot survive a transaction pool handing its server connection to
 * another client between transactions: session-level state (LISTEN, SET/RESET, set_config(…,
 * false), session advisory locks, SQL PREPARE, temporary objects, cursors WITH HOLD). A client
 * that uses one is pinned to its server connection for the rest of its session. Also whether the
 * SQL resets the session (DISCARD ALL, DEALLOCATE ALL), which drops what the pool keeps on the
 * connection (its prepared statements, the parameters it applied).
 *
 * A small scanner, not a parser: it splits the text into statements and words, skipping string
 * literals (standard, E'' with backslash escapes, U&''), dollar-quoted bodies, quoted
 * identifiers and comments (nested /* *\/ too), so a word inside any of those never pins.
 * Pure: text in, findings out.
 */

export type PinReason = 'listen' | 'set' | 'advisory_lock' | 'prepare' | 'temp_object' | 'cursor_with_hold' | 'prepared_statement';

export interface SqlSessionEffects {
  /** Why the client must keep its server connection, in order of first appearance, each once. */
  pins: PinReason[];
  /** DISCARD ALL or DEALLOCATE ALL: the server forgets its prepared statements (and, for DISCARD, settings). */
  resetsSession: boolean;
}

/** A word (unquoted, lower-cased), a quoted identifier, a literal, or one punctuation character. */
interface Token {
  kind: 'word' | 'quoted' | 'literal' | 'punct';
  text: string;
}

const SESSION_ADVISORY_LOCKS = new Set(['pg_advisory_lock', 'pg_try_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock_shared']);
const TEMP = new Set(['temp', 'temporary']);

/**
 * Every pin and reset needs one of these words (set also in reset and set_config, temp in
 * temporary, hold in WITH HOLD): text without any is not tokenised, as most queries are.
 */
const MAY_AFFECT_SESSION = /set|listen|prepare|temp|hold|advisory|discard|deallocate/i;

/** What most SQL does to the session: nothing (shared, never changed). */
const NO_EFFECTS: SqlSessionEffects = Object.freeze({ pins: Object.freeze([]) as unknown as PinReason[], resetsSession: false });

export function sqlSessionEffects(sql: string): SqlSessionEffects {
  if (!MAY_AFFECT_SESSION.test(sql)) return NO_EFFECTS;
  const pins = new Set<PinReason>();
  let resetsSession = false;
  for (const statement of statements(sql)) {
    for (const reason of statementPins(statement)) pins.add(reason);
    if (isSessionReset(statement)) resetsSession = true;
  }
  return { pins: [...pins], resetsSession };
}

/** MAY_AFFECT_SESSION's words, lower-case, as bytes; a first byte's index says which may start there. */
const SET = Buffer.from('set');
const SESSION_WORDS = [SET, ...['listen', 'prepare', 'temp', 'hold', 'advisory', 'discard', 'deallocate'].map((word) => Buffer.from(word))];
const WORDS_BY_FIRST: Array<Buffer[] | undefined> = [];
for (const word of SESSION_WORDS) (WORDS_BY_FIRST[word[0]!] ??= []).push(word);
const SET_CONFIG = Buffer.from('set_config');
const RESET = Buffer.from('reset');

/**
 * Whether the UTF-8 SQL in `bytes` from `start` to `end` may do what sqlSessionEffects finds,
 * read on the bytes so that most SQL is never decoded into a string: it holds a word of
 * MAY_AFFECT_SESSION (ASCII letters in any case; bytes of other characters are all 0x80 or
 * above) — except a `set` that can be neither set_config nor a SET or RESET command, as in
 * `UPDATE t SET …` (see setMayPin). False only where sqlSessionEffects finds nothing.
 */
export function mayAffectSession(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const words = WORDS_BY_FIRST[bytes[i]! | 0x20];
    if (words === undefined) continue;
    for (const word of words) if (wordAt(bytes, i, end, word) && (word !== SET || setMayPin(bytes, start, end, i))) return true;
  }
  return false;
}

/**
 * For a `set` at `at`: true unless it is certainly not set_config and not the first word of a
 * statement that is SET or RESET. That is so when it lies in a longer ASCII word (offset,
 * settings, …), or is the word set or reset with a token before it in its statement: the byte
 * before it, whitespace skipped, is not a `;` — in SQL without comments (which the tokeniser
 * skips like whitespace) and without other characters (some are whitespace to it) around.
 */
function setMayPin(bytes: Buffer, start: number, end: number, at: number): boolean {
  if (wordAt(bytes, at, end, SET_CONFIG)) return true;
  let wordStart = at;
  while (wordStart > start && isAsciiWordByte(bytes[wordStart - 1]!)) wordStart--;
  let wordEnd = at + SET.length;
  while (wordEnd < end && isAsciiWordByte(bytes[wordEnd]!)) wordEnd++;
  if ((wordStart > start && bytes[wordStart - 1]! >= 0x80) || (wordEnd < end && bytes[wordEnd]! >= 0x80)) return true;
  const length = wordEnd - wordStart;
  if (length !== SET.length && !(length === RESET.length && wordAt(bytes, wordStart, end, RESET))) return false;
  for (let i = start; i + 1 < end; i++) {
    if ((bytes[i] === 0x2d /* - */ && bytes[i + 1] === 0x2d) || (bytes[i] === 0x2f /* / */ && bytes[i + 1] === 0x2a) /* * */) return true;
  }
  for (let i = wordStart - 1; i >= start; i--) {
    const byte = bytes[i]!;
    if (byte === 0x20 || (byte >= 0x09 && byte <= 0x0d)) continue;
    return byte === 0x3b /* ; */ || byte >= 0x80;
  }
  return true;
}

/** A byte the tokeniser may take into a word: A-Z, a-z, 0-9, _ and $. */
function isAsciiWordByte(byte: number): boolean {
  const letter = byte | 0x20;
  return (letter >= 0x61 && letter <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x5f || byte === 0x24;
}

/** `word` (lower-case ASCII) at `at`, its letters in any case. */
function wordAt(bytes: Buffer, at: number, end: number, word: Buffer): boolean {
  if (end - at < word.length) return false;
  for (let j = 0; j < word.length; j++) {
    const byte = bytes[at + j]!;
    // Only a letter's lower case has the 0x20 bit that `| 0x20` sets: `_` matches itself alone.
    if (byte !== word[j] && (byte | 0x20) !== word[j]) return false;
  }
  return true;
}

function statementPins(t: Token[]): PinReason[] {
  const found: PinReason[] = [];
  const word = (i: number): string | undefined => (t[i]?.kind === 'word' ? t[i]!.text : undefined);
  const first = word(0);
  if (first === 'listen') found.push('listen');
  if (first === 'set' && !['local', 'transaction', 'constraints'].includes(word(1) ?? '')) found.push('set');
  if (first === 'reset') found.push('set');
  if (first === 'prepare' && word(1) !== 'transaction') found.push('prepare');
  if (first === 'create') {
    let i = 1;
    while (['or', 'replace', 'global', 'local'].includes(word(i) ?? '')) i++;
    if (TEMP.has(word(i) ?? '')) found.push('temp_object');
  }
  if (first === 'declare') {
    for (let i = 1; i < t.length && word(i) !== 'for'; i++) {
      if (word(i) === 'with' && word(i + 1) === 'hold') found.push('cursor_with_hold');
    }
  }
  for (let i = 0; i < t.length; i++) {
    const w = word(i);
    if (w === undefined) continue;
    const call = t[i + 1]?.kind === 'punct' && t[i + 1]!.text === '(';
    if (call && SESSION_ADVISORY_LOCKS.has(w)) found.push('advisory_lock');
    if (call && w === 'set_config' && !setConfigIsLocal(t, i + 2)) found.push('set');
    // SELECT … INTO TEMP t creates a temporary table too.
    if (w === 'into' && first !== 'insert' && TEMP.has(word(i + 1) ?? '')) found.push('temp_object');
  }
  return found;
}

/** set_config's third argument, from the token after its '(': only a literal `true` is transaction-local. */
function setConfigIsLocal(t: Token[], start: number): boolean {
  let depth = 0;
  let argument = 0;
  const third: Token[] = [];
  for (let i = start; i < t.length; i++) {
    const token = t[i]!;
    if (token.kind === 'punct' && token.text === '(') depth++;
    else if (token.kind === 'punct' && token.text === ')') {
      if (depth === 0) break;
      depth--;
    } else if (token.kind === 'punct' && token.text === ',' && depth === 0) {
      argument++;
      continue;
    }
    if (argument === 2) third.push(token);
  }
  if (third.length !== 1) return false;
  const only = third[0]!;
  return (only.kind === 'word' && only.text === 'true') || (only.kind === 'literal' && ['t', 'true', 'on', 'yes', '1'].includes(only.text.toLowerCase()));
}

function isSessionReset(t: Token[]): boolean {
  const w = (i: number): string | undefined => (t[i]?.kind === 'word' ? t[i]!.text : undefined);
  if (w(0) === 'discard' && w(1) === 'all') return true;
  if (w(0) === 'deallocate' && (w(1) === 'all' || (w(1) === 'prepare' && w(2) === 'all'))) return true;
  return false;
}

/** The statements of a (possibly multi-statement) text, each as its tokens; empty ones left out. */
function statements(sql: string): Token[][] {
  const result: Token[][] = [];
  let current: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === ';') {
      if (current.length > 0) result.push(current);
      current = [];
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (c === "'") {
      const end = skipString(sql, i + 1, false);
      current.push({ kind: 'literal', text: sql.slice(i + 1, end - 1).replace(/''/g, "'") });
      i = end;
    } else if ((c === 'e' || c === 'E') && next === "'") {
      const end = skipString(sql, i + 2, true);
      current.push({ kind: 'literal', text: sql.slice(i + 2, end - 1) });
      i = end;
    } else if ((c === 'u' || c === 'U') && next === '&' && (sql[i + 2] === "'" || sql[i + 2] === '"')) {
      const quote = sql[i + 2]!;
      const end = quote === "'" ? skipString(sql, i + 3, false) : skipQuotedIdentifier(sql, i + 3);
      current.push({ kind: quote === "'" ? 'literal' : 'quoted', text: sql.slice(i + 3, end - 1) });
      i = end;
    } else if (c === '"') {
      const end = skipQuotedIdentifier(sql, i + 1);
      current.push({ kind: 'quoted', text: sql.slice(i + 1, end - 1) });
      i = end;
    } else if (c === '$' && dollarTag(sql, i) !== undefined) {
      const tag = dollarTag(sql, i)!;
      const close = sql.indexOf(tag, i + tag.length);
      const end = close < 0 ? n : close + tag.length;
      current.push({ kind: 'literal', text: sql.slice(i + tag.length, close < 0 ? n : close) });
      i = end;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let end = i + 1;
      while (end < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[end]!)) end++;
      current.push({ kind: 'word', text: sql.slice(i, end).toLowerCase() });
      i = end;
    } else {
      current.push({ kind: 'punct', text: c });
      i++;
    }
  }
  if (current.length > 0) result.push(current);
  return result;
}

/** Index after the closing quote of a string whose body starts at `i` (the end of text when unclosed). */
function skipString(sql: string, i: number, backslashEscapes: boolean): number {
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === "'") {
      if (sql[i + 1] === "'") i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}

function skipQuotedIdentifier(sql: string, i: number): number {
  while (i < sql.length) {
    if (sql[i] === '"') {
      if (sql[i + 1] === '"') i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}

/** Comments nest in PostgreSQL. */
function skipBlockComment(sql: string, i: number): number {
  let depth = 0;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return sql.length;
}

/** `$tag$` or `$$` at `i` (a `$1` parameter is not one): the whole delimiter. */
function dollarTag(sql: string, i: number): string | undefined {
  const match = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
  return match?.[0];
}
