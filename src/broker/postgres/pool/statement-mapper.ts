/**
 * Protocol-level prepared statements in transaction mode (as PgBouncer ≥ 1.21 does with
 * max_prepared_statements): a client's named statement lives on whichever server connection
 * it is attached to when it needs it.
 *
 * Per client: its statement names → query text and parameter types. Per server connection
 * (ServerConnection.prepared, shared by the clients of the key): statement key (text and types)
 * → a server-side name `azdb_s_<n>`, at most `max` of them, least recently used closed first.
 * A client Parse of a named statement becomes a Parse under the server name (or, when the
 * connection has it already, a Parse+Close of an empty throwaway statement, which answers
 * ParseComplete in its place in order); Bind, Describe 'S' and Close 'S' of a client name are
 * rewritten to the server name, with the Parse injected first where the connection lacks it.
 * A client's Close 'S' becomes a Close of a name that never exists, which the server answers with
 * CloseComplete in order while the shared statement stays. The replies to what the mapper added
 * (ParseComplete of an injected Parse, CloseComplete of an eviction or of the throwaway) are taken
 * out of the server's stream (fromServer). Unnamed statements pass unchanged.
 *
 * Pure: frames in, bytes out; the connection's map is the only state outside the mapper.
 */
import { cstring, encodeMessage, type Frame } from '../codec/frames.js';
import { PgProtocolError } from '../codec/protocol-error.js';
import type { ServerConnection } from './server-connection.js';

const PARSE = 0x50; // P
const BIND = 0x42; // B
const DESCRIBE = 0x44; // D
const CLOSE = 0x43; // C
const SYNC = 0x53; // S
const QUERY = 0x51; // Q
const FUNCTION_CALL = 0x46; // F
const PARSE_COMPLETE = 0x31; // 1
const CLOSE_COMPLETE = 0x33; // 3
const ERROR_RESPONSE = 0x45; // E
const READY_FOR_QUERY = 0x5a; // Z
const STATEMENT = 0x53; // 'S' in Describe and Close

/** Maps a client's named prepared statements onto whichever connection is attached, for the transaction relay. */
export interface StatementMapping {
  /** The bytes to send for one client message on `connection`; `bytes`: the message as received, when at hand. */
  toServer(frame: Frame, connection: ServerConnection, bytes?: Buffer): Buffer[];
  /** False for a server message that answers what the mapping sent itself, or the message to send the client instead. */
  fromServer(frame: Frame): boolean | Buffer;
}

/** The server messages fromServer reads (the others it passes unread): what answers a Parse or Close, an error, the end of a Sync. */
export const MAPPER_REPLIES: ReadonlySet<number> = new Set([PARSE_COMPLETE, CLOSE_COMPLETE, ERROR_RESPONSE, READY_FOR_QUERY]);

/** Names the server never has: a throwaway for ParseComplete, and the target of a client's Close. */
const THROWAWAY = 'azdb_noop';
const NEVER_PREPARED = 'azdb_closed';
/** Parsed twice, so that the server answers "already exists" for a client's duplicate Parse; it may stay on the connection. */
const DUPLICATE = 'azdb_duplicate';
const DUPLICATE_QUOTED = Buffer.from(`"${DUPLICATE}"`);

/** The server's answer to a Parse or Close passed as it came: the client gets it (shared: replies are only read). */
const ANSWERED: Reply = Object.freeze({ swallow: false });

/** A segment that owes nothing (most do: a Query's), shared: never added to (see expect). */
const NO_REPLIES: Reply[] = [];

/** Server-side statement names, unique in the process and so on every connection. */
let lastServerStatement = 0;

export type ConnectionStatements = Pick<ServerConnection, 'prepared'>;

interface ClientStatement {
  key: string;
  query: Buffer;
  /** The parameter-type part of the Parse: int16 count and the OIDs, as sent. */
  types: Buffer;
}

/** What the server will answer to a Parse or Close the mapper sent, in order. */
interface Reply {
  swallow: boolean;
  /** A statement the mapper recorded on a connection before the server confirmed it. */
  added?: { statements: ConnectionStatements; key: string; name: string };
  /** The client's own Parse of a name: unconfirmed, the name does not exist for the client either. */
  client?: { name: string; key: string };
  /** A client's Parse of a name it has: the server's "already exists" names DUPLICATE, the client must read this name. */
  duplicate?: Buffer;
}

export class StatementMapper implements StatementMapping {
  private readonly statements = new Map<string, ClientStatement>();
  /** Replies owed per Sync (or Query, FunctionCall): the first is being answered, the last takes new ones. */
  private readonly segments: Reply[][] = [NO_REPLIES];

  constructor(private readonly max: number) {}

  /**
   * For a client message the mapper leaves as it is — any but Parse, Bind, Describe and Close, and
   * those when they name no statement of the client (unnamed ones, portals) — takes note of it
   * and says true, so that it goes as it came without a Frame made for it; false for the others,
   * and for one it cannot read here, which go through toServer. `bytes` holds the message's
   * payload from `start` to `end`.
   */
  passes(code: number, bytes: Buffer, start: number, end: number): boolean {
    switch (code) {
      case PARSE:
        // The unnamed statement (its name is empty), as parse() does it.
        if (start >= end || bytes[start] !== 0) return false;
        this.expect(ANSWERED);
        return true;
      case BIND: {
        const portalEnd = bytes.indexOf(0, start);
        // An empty statement name, terminated: bind() leaves it as it is.
        return portalEnd >= 0 && portalEnd + 1 < end && bytes[portalEnd + 1] === 0;
      }
      case DESCRIBE:
      case CLOSE: {
        // A portal, or the unnamed statement: describeOrClose() leaves it as it is (a Close is answered).
        const nameEnd = start + 1 < end ? bytes.indexOf(0, start + 1) : -1;
        if (nameEnd < 0 || nameEnd >= end || (bytes[start] === STATEMENT && nameEnd !== start + 1)) return false;
        if (code === CLOSE) this.expect(ANSWERED);
        return true;
      }
      case SYNC:
      case QUERY:
      case FUNCTION_CALL:
        this.segments.push(NO_REPLIES);
        return true;
      default:
        return true;
    }
  }

  toServer(frame: Frame, connection: ConnectionStatements, bytes?: Buffer): Buffer[] {
    const unchanged = (): Buffer => bytes ?? encodeMessage(frame.code, frame.payload);
    switch (frame.code) {
      case PARSE:
        return this.parse(frame.payload, connection, unchanged);
      case BIND:
        return this.bind(frame.payload, connection, unchanged);
      case DESCRIBE:
      case CLOSE:
        return this.describeOrClose(frame.code, frame.payload, connection, unchanged);
      case SYNC:
      case QUERY:
      case FUNCTION_CALL:
        this.segments.push(NO_REPLIES);
        return [unchanged()];
      default:
        return [unchanged()];
    }
  }

  fromServer(frame: Frame): boolean | Buffer {
    if (frame.code === PARSE_COMPLETE || frame.code === CLOSE_COMPLETE) {
      return !(this.segments[0]!.shift()?.swallow ?? false);
    }
    if (frame.code === ERROR_RESPONSE) {
      const duplicate = this.segments[0]![0]?.duplicate;
      // The server skips the rest up to the Sync: what it did not confirm is not there.
      for (const reply of this.segments[0]!.splice(0)) {
        const added = reply.added;
        if (added && added.statements.prepared.get(added.key) === added.name) added.statements.prepared.delete(added.key);
        const client = reply.client;
        if (client && this.statements.get(client.name)?.key === client.key) this.statements.delete(client.name);
      }
      const at = duplicate ? frame.payload.indexOf(DUPLICATE_QUOTED) : -1;
      if (duplicate && at >= 0) {
        const quoted = Buffer.concat([Buffer.from('"'), duplicate, Buffer.from('"')]);
        return encodeMessage(ERROR_RESPONSE, frame.payload.subarray(0, at), quoted, frame.payload.subarray(at + DUPLICATE_QUOTED.length));
      }
    } else if (frame.code === READY_FOR_QUERY) {
      this.segments.shift();
      if (this.segments.length === 0) this.segments.push(NO_REPLIES);
    }
    return true;
  }

  private parse(payload: Buffer, connection: ConnectionStatements, unchanged: () => Buffer): Buffer[] {
    const [name, afterName] = cstringAt(payload, 0, 'Parse');
    if (name === '') {
      this.expect({ swallow: false });
      return [unchanged()];
    }
    const queryEnd = payload.indexOf(0, afterName);
    if (queryEnd < 0) throw new PgProtocolError('Parse: the query is not terminated');
    const query = Buffer.from(payload.subarray(afterName, queryEnd + 1));
    const types = Buffer.from(payload.subarray(queryEnd + 1));
    if (this.statements.has(name)) return this.duplicate(payload.subarray(0, afterName - 1));
    const key = `${query.toString('hex')}:${types.toString('hex')}`;
    const statement: ClientStatement = { key, query, types };
    this.statements.set(name, statement);
    const present = connection.prepared.get(key);
    if (present !== undefined) {
      touch(connection, key, present);
      // The client still expects a ParseComplete, after the replies to what it sent before.
      this.expect({ swallow: false, client: { name, key } });
      this.expect({ swallow: true });
      return [encodeMessage(PARSE, cstring(THROWAWAY), cstring(''), Buffer.from([0, 0])), encodeMessage(CLOSE, Buffer.from([STATEMENT]), cstring(THROWAWAY))];
    }
    return this.prepare(connection, statement, name).out;
  }

  private bind(payload: Buffer, connection: ConnectionStatements, unchanged: () => Buffer): Buffer[] {
    const [, afterPortal] = cstringAt(payload, 0, 'Bind');
    const [name, afterName] = cstringAt(payload, afterPortal, 'Bind');
    const statement = name === '' ? undefined : this.statements.get(name);
    if (!statement) return [unchanged()];
    const { out, serverName } = this.ensure(connection, statement);
    out.push(encodeMessage(BIND, payload.subarray(0, afterPortal), cstring(serverName), payload.subarray(afterName)));
    return out;
  }

  private describeOrClose(code: number, payload: Buffer, connection: ConnectionStatements, unchanged: () => Buffer): Buffer[] {
    const kind = payload[0];
    const [name] = cstringAt(payload, 1, code === CLOSE ? 'Close' : 'Describe');
    const statement = kind === STATEMENT && name !== '' ? this.statements.get(name) : undefined;
    if (code === CLOSE) this.expect({ swallow: false });
    if (!statement) return [unchanged()];
    if (code === CLOSE) {
      // The server's statement stays for the other clients (and the LRU); the client's name goes.
      this.statements.delete(name);
      return [encodeMessage(CLOSE, Buffer.from([STATEMENT]), cstring(NEVER_PREPARED))];
    }
    const { out, serverName } = this.ensure(connection, statement);
    out.push(encodeMessage(DESCRIBE, Buffer.from([STATEMENT]), cstring(serverName)));
    return out;
  }

  /**
   * A Parse of a name the client has already: the server must answer 42P05 "already exists" and
   * skip to the Sync, as on a connection of the client's own. DUPLICATE is parsed twice (the first
   * fails at once when it stayed from before, else its ParseComplete is hidden) and the error's
   * name is replaced by the client's. DUPLICATE stays on the connection, under a name no client
   * statement is mapped to, until `DISCARD ALL`.
   */
  private duplicate(name: Buffer): Buffer[] {
    this.expect({ swallow: true, duplicate: name });
    this.expect({ swallow: false, duplicate: name });
    const empty = encodeMessage(PARSE, cstring(DUPLICATE), cstring(''), Buffer.from([0, 0]));
    return [empty, empty];
  }

  /** The server name of `statement` on the connection, with the Parse that makes it so first when it lacks it. */
  private ensure(connection: ConnectionStatements, statement: ClientStatement): { out: Buffer[]; serverName: string } {
    const present = connection.prepared.get(statement.key);
    if (present !== undefined) {
      touch(connection, statement.key, present);
      return { out: [], serverName: present };
    }
    return this.prepare(connection, statement);
  }

  /**
   * Parses `statement` under a new server name, closing the least recently used beyond `max`: for
   * the client's own Parse of `clientName`, else injected (its ParseComplete hidden).
   */
  private prepare(connection: ConnectionStatements, statement: ClientStatement, clientName?: string): { out: Buffer[]; serverName: string } {
    const out: Buffer[] = [];
    while (connection.prepared.size >= this.max) {
      const [oldKey, oldName] = connection.prepared.entries().next().value as [string, string];
      connection.prepared.delete(oldKey);
      out.push(encodeMessage(CLOSE, Buffer.from([STATEMENT]), cstring(oldName)));
      this.expect({ swallow: true });
    }
    const serverName = `azdb_s_${++lastServerStatement}`;
    connection.prepared.set(statement.key, serverName);
    out.push(encodeMessage(PARSE, cstring(serverName), statement.query, statement.types));
    const added = { statements: connection, key: statement.key, name: serverName };
    this.expect(clientName === undefined ? { swallow: true, added } : { swallow: false, added, client: { name: clientName, key: statement.key } });
    return { out, serverName };
  }

  private expect(reply: Reply): void {
    const last = this.segments.length - 1;
    if (this.segments[last] === NO_REPLIES) this.segments[last] = [reply];
    else this.segments[last]!.push(reply);
  }
}

/** Most recently used last. */
function touch(connection: ConnectionStatements, key: string, name: string): void {
  connection.prepared.delete(key);
  connection.prepared.set(key, name);
}

function cstringAt(payload: Buffer, offset: number, what: string): [string, number] {
  const end = payload.indexOf(0, offset);
  if (end < 0) throw new PgProtocolError(`${what}: a name is not terminated`);
  return [payload.toString('utf8', offset, end), end + 1];
}
