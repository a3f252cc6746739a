/**
 * Azure Database for MySQL's `CREATE AADUSER` statement, which MariaDB does not have: the
 * emulated front answers it itself. Pure parser:
 *
 *   CREATE AADUSER 'name' [IDENTIFIED BY '<client id or object id>'] [;]
 *
 * Names are quoted with ' or " (a doubled quote is a quote), as Azure's docs write them.
 */

export type CreateAadUserParse =
  /** Not this statement at all: the front passes it on to MariaDB. */
  | { type: 'other' }
  | { type: 'create'; user: string; identifiedBy: string | undefined }
  /** Starts as CREATE AADUSER but does not parse; `near` is the text from where it went wrong. */
  | { type: 'syntax-error'; near: string };

/** MariaDB's limit on account names; Azure's MySQL has 32, but MariaDB is what stores them. */
export const MAX_AAD_USER_NAME = 80;
/** Enough for the statement with the longest name and a UPN; longer text is not parsed. */
export const MAX_CREATE_AADUSER_TEXT = 4096;

const HEAD = /^\s*create\s+aaduser\b/i;

export function isCreateAadUser(sql: string): boolean {
  return HEAD.test(sql);
}

export function parseCreateAadUser(sql: string): CreateAadUserParse {
  const head = HEAD.exec(sql);
  if (!head) return { type: 'other' };
  if (sql.length > MAX_CREATE_AADUSER_TEXT) return { type: 'syntax-error', near: sql.slice(head[0].length, head[0].length + 80).trimStart() };
  const scanner = new Scanner(sql, head[0].length);
  const user = scanner.quoted();
  if (user === undefined) return scanner.error();
  let identifiedBy: string | undefined;
  if (scanner.keyword('identified')) {
    if (!scanner.keyword('by')) return scanner.error();
    identifiedBy = scanner.quoted();
    if (identifiedBy === undefined) return scanner.error();
  }
  scanner.skipSpace();
  if (scanner.peek() === ';') scanner.advance(1);
  scanner.skipSpace();
  if (!scanner.atEnd()) return scanner.error();
  return { type: 'create', user, identifiedBy };
}

class Scanner {
  constructor(
    private readonly text: string,
    private at: number,
  ) {}

  skipSpace(): void {
    while (this.at < this.text.length && /\s/.test(this.text[this.at]!)) this.at += 1;
  }

  peek(): string | undefined {
    return this.text[this.at];
  }

  advance(n: number): void {
    this.at += n;
  }

  atEnd(): boolean {
    return this.at >= this.text.length;
  }

  keyword(word: string): boolean {
    this.skipSpace();
    const candidate = this.text.slice(this.at, this.at + word.length);
    const after = this.text[this.at + word.length];
    if (candidate.toLowerCase() !== word || (after !== undefined && /\w/.test(after))) return false;
    this.at += word.length;
    return true;
  }

  /** A '...' or "..." string; undefined (position kept at the bad spot) when there is none. */
  quoted(): string | undefined {
    this.skipSpace();
    const quote = this.peek();
    if (quote !== "'" && quote !== '"') return undefined;
    let value = '';
    let i = this.at + 1;
    for (;;) {
      const c = this.text[i];
      if (c === undefined) return undefined;
      if (c === quote) {
        if (this.text[i + 1] === quote) {
          value += quote;
          i += 2;
          continue;
        }
        this.at = i + 1;
        return value;
      }
      value += c;
      i += 1;
    }
  }

  error(): CreateAadUserParse {
    return { type: 'syntax-error', near: this.text.slice(this.at, this.at + 80) };
  }
}

/** The ERR packets MySQL sends for this statement, with its codes and wording. */
export const createAadUserErrors = {
  /** ER_PARSE_ERROR */
  syntax: (near: string) => ({ code: 1064, sqlState: '42000', message: `You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '${near}' at line 1` }),
  /** ER_SPECIFIC_ACCESS_DENIED_ERROR: only the server's Entra admin may create Entra users. */
  notAdmin: () => ({ code: 1227, sqlState: '42000', message: 'Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation' }),
  /** ER_WRONG_STRING_LENGTH */
  nameTooLong: (user: string) => ({ code: 1470, sqlState: 'HY000', message: `String '${user.slice(0, 100)}' is too long for user name (should be no longer than ${MAX_AAD_USER_NAME})` }),
  /** ER_CANNOT_USER: the account exists already. */
  exists: (user: string) => ({ code: 1396, sqlState: 'HY000', message: `Operation CREATE USER failed for '${user}'@'%'` }),
  /** The id after IDENTIFIED BY names no identity of the tenant (ER_UNKNOWN_ERROR, as Azure's own checks). */
  unknownIdentity: (id: string) => ({
    code: 1105,
    sqlState: 'HY000',
    message: `Operation CREATE AADUSER failed: '${id.slice(0, 100)}' is not the client id or object id of a Microsoft Entra identity`,
  }),
} as const;
