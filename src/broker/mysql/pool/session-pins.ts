/**
 * Which client commands leave state on a MySQL server connection that a transaction pool cannot
 * hand to another client: such a command pins the client to its connection for the rest of its
 * session. A small scanner reads the SQL as the server would tokenise it enough for that: string
 * literals ('…', "…"), backtick identifiers and comments (`-- `, `#`, `/* … *\/`) are skipped,
 * except executable comments (`/*! … *\/`, `/*M! … *\/`), whose text the server runs. It is
 * conservative: a statement it cannot tell harmless, it pins. Pure: no sockets.
 */
import { Command } from '../codec/commands.js';

export type PinReason =
  | 'set'
  | 'user-variable'
  | 'temporary-table'
  | 'lock-tables'
  | 'get-lock'
  | 'found-rows'
  | 'last-insert-id'
  | 'prepare'
  | 'use'
  | 'handler'
  | 'xa'
  | 'call'
  | 'prepared-statement'
  | 'change-user'
  | 'set-option'
  | 'unscanned'
  | 'command';

interface QueryVerdict {
  pin?: PinReason;
  /** `SET TRANSACTION …` (next transaction only): keep the connection through the next transaction. */
  holdForNextTransaction: boolean;
}

/** Commands that carry no session state, or whose state the ExchangeTracker follows. */
const STATELESS_COMMANDS: ReadonlySet<number> = new Set([
  Command.Query,
  Command.Ping,
  Command.Statistics,
  Command.FieldList,
  Command.ProcessKill,
  Command.ProcessInfo,
  Command.Refresh,
  Command.Debug,
  Command.Time,
  Command.ResetConnection,
  Command.Quit,
]);

/** Why a command (other than a COM_QUERY, which `scanQuery` judges) pins, if it does. */
export function commandPin(command: number): PinReason | undefined {
  switch (command) {
    case Command.InitDb:
      return 'use';
    case Command.StmtPrepare:
    case Command.StmtExecute:
    case Command.StmtBulkExecute:
    case Command.StmtFetch:
    case Command.StmtSendLongData:
    case Command.StmtReset:
    case Command.StmtClose:
      return 'prepared-statement';
    case Command.ChangeUser:
      return 'change-user';
    case Command.SetOption:
      return 'set-option';
    default:
      return STATELESS_COMMANDS.has(command) ? undefined : 'command';
  }
}

/** Functions whose effect outlives the statement on its connection. */
const FUNCTION_PINS: ReadonlyMap<string, PinReason> = new Map([
  ['GET_LOCK', 'get-lock'],
  ['FOUND_ROWS', 'found-rows'],
  ['SQL_CALC_FOUND_ROWS', 'found-rows'],
  ['LAST_INSERT_ID', 'last-insert-id'],
]);

/** Statements, by their first word, that leave session state. */
const STATEMENT_PINS: ReadonlyMap<string, PinReason> = new Map([
  ['PREPARE', 'prepare'],
  ['EXECUTE', 'prepare'],
  ['DEALLOCATE', 'prepare'],
  ['USE', 'use'],
  ['LOCK', 'lock-tables'],
  ['HANDLER', 'handler'],
  ['XA', 'xa'],
  ['CALL', 'call'],
]);

/** Words judgeStatement keys on beyond the two maps. */
const OTHER_PIN_WORDS = ['@', 'SET', 'TEMPORARY'];
/** Characters that String#toUpperCase turns into ASCII letters (ß → SS, ſ → S, ﬆ → ST, …), so a token could spell a word above. */
const UPPERCASE_TO_ASCII = '[\\u00df\\u0131\\u0149\\u017f\\u01f0\\u1e96-\\u1e9a\\ufb00-\\ufb06]';
/**
 * A cheap test before tokenising: SQL without any word a rule keys on (case-insensitively, as a
 * substring) cannot pin or hold, so most queries are never scanned.
 */
export const MAY_PIN = new RegExp([...OTHER_PIN_WORDS, ...STATEMENT_PINS.keys(), ...FUNCTION_PINS.keys()].join('|') + '|' + UPPERCASE_TO_ASCII, 'i');

/** The verdict on a COM_QUERY's SQL text (every statement of a multi-statement query). */
export function scanQuery(sql: string): QueryVerdict {
  if (!MAY_PIN.test(sql)) return { holdForNextTransaction: false };
  let holdForNextTransaction = false;
  for (const statement of statements(sql)) {
    const verdict = judgeStatement(statement);
    if (verdict.pin) return verdict;
    holdForNextTransaction ||= verdict.holdForNextTransaction;
  }
  return { holdForNextTransaction };
}

function judgeStatement(tokens: string[]): QueryVerdict {
  const none = { holdForNextTransaction: false };
  const first = tokens[0];
  if (first === undefined) return none;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '@' && tokens[i + 1] !== '@') return { pin: 'user-variable', holdForNextTransaction: false };
    if (token === '@') i++; // @@system_variable: a read, or SET's business below
    const fn = FUNCTION_PINS.get(token);
    if (fn) return { pin: fn, holdForNextTransaction: false };
    if (token === 'TEMPORARY' && tokens.includes('CREATE')) return { pin: 'temporary-table', holdForNextTransaction: false };
    if (token === 'LOCK' && tokens[i - 1] === 'READ' && tokens[i - 2] === 'WITH') return { pin: 'lock-tables', holdForNextTransaction: false };
  }
  const statement = STATEMENT_PINS.get(first);
  if (statement) return { pin: statement, holdForNextTransaction: false };
  if (first === 'SET') {
    // SET TRANSACTION (without SESSION or GLOBAL) shapes only the next transaction.
    if (tokens[1] === 'TRANSACTION') return { holdForNextTransaction: true };
    return { pin: 'set', holdForNextTransaction: false };
  }
  return none;
}

/** The statements of `sql`, each as its upper-cased words and punctuation; literals, identifiers in backticks and comments dropped. */
export function statements(sql: string): string[][] {
  const all: string[][] = [];
  let current: string[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(sql, i, c);
      current.push(c === '`' ? 'IDENT' : 'LITERAL');
      continue;
    }
    if (c === '#' || (c === '-' && sql[i + 1] === '-' && (i + 2 >= n || /\s/.test(sql[i + 2]!)))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const executable = /^\/\*M?!\d*/.exec(sql.slice(i, i + 12));
      // An executable comment's text runs: go on scanning inside it; its closing */ is skipped below.
      if (executable) {
        i += executable[0].length;
        continue;
      }
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (c === '*' && sql[i + 1] === '/') {
      i += 2;
      continue;
    }
    if (c === ';') {
      if (current.length > 0) all.push(current);
      current = [];
      i++;
      continue;
    }
    if (/[A-Za-z0-9_$\u0080-\uffff]/.test(c)) {
      let end = i + 1;
      while (end < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[end]!)) end++;
      current.push(sql.slice(i, end).toUpperCase());
      i = end;
      continue;
    }
    if (!/\s/.test(c)) current.push(c);
    i++;
  }
  if (current.length > 0) all.push(current);
  return all;
}

/** The index after a quoted run starting at `start`; doubled quotes and (outside backticks) backslashes escape. */
function skipQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === '\\' && quote !== '`') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return i;
}
