/**
 * Binary-protocol prepared statements in transaction mode (as ProxySQL and RDS Proxy do): a
 * client's statement lives on whichever server connection it is attached to when it needs it.
 *
 * Per client: statement ids azdb mints (1, 2, …) → SQL text, parameter count, the parameter types
 * of its last COM_STMT_EXECUTE, and whether long data or a cursor keeps the connection. Per server
 * connection (MySqlServerConnection.prepared, shared by the clients of the key): SQL text → the
 * server's statement id, at most `max` of them, least recently used closed (COM_STMT_CLOSE) first.
 *
 * A client's COM_STMT_PREPARE goes to the server as it is; its PREPARE_OK goes back carrying
 * azdb's id. COM_STMT_EXECUTE / SEND_LONG_DATA / RESET / FETCH / BULK_EXECUTE are rewritten to the
 * attached connection's id, with a COM_STMT_PREPARE injected first where the connection lacks it;
 * its whole answer is swallowed (or its ERR answers the client's command). An EXECUTE that relies
 * on types bound earlier ("new params bound" 0) gets them again: the statement may be shared, or
 * on a connection the types never reached. COM_STMT_CLOSE only forgets the client's id. An id the
 * client never had becomes 0, which the server refuses in order, as it would the id.
 *
 * A prepare (the client's or injected) goes out only when every earlier command was answered, so
 * the server's next packets are its answer; client bytes after it wait for that answer.
 *
 * Pure: bytes in, bytes out; the connection's map is the only state outside the mapper.
 */
import { Command } from '../codec/commands.js';
import { Capability, hasCapability } from '../codec/constants.js';
import { MAX_PHYSICAL_PAYLOAD, PACKET_HEADER_LENGTH, encodePacket, sequenceIdAfter } from '../codec/packets.js';
import { ResponseHeader } from '../codec/responses.js';
import { MySqlPayloadReader } from '../codec/values.js';

export interface ConnectionStatements {
  /** SQL text (latin1 of its bytes) → the server's statement id; Map order is least recently used first. */
  readonly prepared: Map<string, number>;
}

/** What the relay knows of the exchange when client bytes come. */
interface ExchangeState {
  /** Every command sent was answered. */
  idle: boolean;
  /** The client is sending LOCAL INFILE data. */
  infile: boolean;
}

interface Mapped {
  toServer: Buffer[];
  toClient: Buffer[];
}

interface ClientStatement {
  key: string;
  sql: Buffer;
  params: number;
  /** The types block of its last EXECUTE that sent types. */
  types?: Buffer;
}

/** The prepare whose answer the server is sending. */
interface Awaited {
  key: string;
  /** The client's own COM_STMT_PREPARE (its answer goes to the client), or azdb's (swallowed). */
  own: boolean;
  sql: Buffer;
  packets: Buffer[];
  /** Definition packets still to come after the PREPARE_OK; undefined before it. */
  left?: number;
  /** The client command the injected prepare is for. */
  held?: Buffer;
}

/** The empty inboxes every mapper starts with (never written to: a zero-length buffer). */
const EMPTY: Buffer = Buffer.alloc(0);
/** Servers number statements from 1 (MariaDB reads 0xffffffff as "the last one prepared"). */
const UNKNOWN_ID = 0;
const CURSOR_TYPE_READ_ONLY = 0x01;
const PARAMETER_COUNT_AVAILABLE = 0x08;
const STATEMENT_COMMANDS: ReadonlySet<number> = new Set([
  Command.StmtPrepare,
  Command.StmtExecute,
  Command.StmtSendLongData,
  Command.StmtClose,
  Command.StmtReset,
  Command.StmtFetch,
  Command.StmtBulkExecute,
]);

/** A COM_STMT_* command: the mapper's business. */
export function isStatementCommand(command: number): boolean {
  return STATEMENT_COMMANDS.has(command);
}

export class StatementMapper {
  /** Made at their first entry: a client that prepares nothing (or sends no long data, opens no cursor) keeps none. */
  private statements: Map<number, ClientStatement> | undefined;
  /** Client ids with long data sent and not yet executed, and with a cursor open: they keep the connection. */
  private longData: Set<number> | undefined;
  private cursors: Set<number> | undefined;
  private lastId = 0;
  /** Client bytes not yet sent. */
  private inbox: Buffer = EMPTY;
  /**
   * Chunks after `inbox`, joined to it only once `needed` bytes are there: a large statement
   * command arriving in many chunks is copied once, not once per chunk.
   */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Bytes the inbox must hold before draining can go on (0: unknown). */
  private needed = 0;
  /** Bytes of the physical packet being passed through that are still to come. */
  private passing = 0;
  /** The packet being passed through is 2^24 - 1 long: the next one continues it. */
  private continued = false;
  /** Passing LOCAL INFILE data up to its empty packet. */
  private infile = false;
  private awaited: Awaited | undefined;
  private serverInbox: Buffer = EMPTY;
  /** COM_STMT_CLOSE of evicted statements, sent with the next bytes (it has no answer). */
  private pendingCloses: Buffer[] = [];
  /** Why the client must be pinned, once. */
  pinReason: 'prepared-statement' | undefined;

  constructor(
    private readonly max: number,
    private readonly capabilities: number,
  ) {}

  /** The client must keep its connection: long data or a cursor on it, a prepare answered or bytes waiting. */
  get holding(): boolean {
    return this.awaited !== undefined || this.inbox.length > 0 || this.pendingLength > 0 || this.passing > 0 || this.continued || (this.longData?.size ?? 0) > 0 || (this.cursors?.size ?? 0) > 0;
  }

  fromClient(chunk: Buffer, connection: ConnectionStatements, state: ExchangeState): Buffer[] {
    if (state.infile && this.inbox.length === 0 && this.passing === 0 && !this.continued) this.infile = true;
    if (this.inbox.length === 0) this.inbox = chunk;
    else {
      this.pending.push(chunk);
      this.pendingLength += chunk.length;
      if (this.inbox.length + this.pendingLength < this.needed && this.pendingCloses.length === 0) return [];
    }
    return this.drain(connection, state.idle);
  }

  /** Server bytes, after the relay's tracker saw them (`idle`: every command sent is answered). */
  fromServer(chunk: Buffer, connection: ConnectionStatements, idle: boolean): Mapped {
    if (!this.awaited) return { toClient: [chunk], toServer: this.inbox.length > 0 ? this.drain(connection, idle) : [] };
    this.serverInbox = this.serverInbox.length === 0 ? chunk : Buffer.concat([this.serverInbox, chunk]);
    const toClient: Buffer[] = [];
    while (this.awaited) {
      const packet = takePacket(this.serverInbox);
      if (!packet) break;
      this.serverInbox = this.serverInbox.subarray(packet.framed.length);
      const done = this.answerPacket(this.awaited, packet, connection, toClient);
      if (!done) continue;
      const awaited = this.awaited;
      this.awaited = undefined;
      const rest = this.serverInbox;
      this.serverInbox = EMPTY;
      // Nothing else was sent: more bytes would be the server speaking unasked; the tracker sees them.
      if (rest.length > 0) toClient.push(rest);
      if (awaited.own) toClient.push(...awaited.packets);
      else if (awaited.held) this.inbox = this.inbox.length === 0 ? awaited.held : Buffer.concat([awaited.held, this.joinedInbox()]);
    }
    return { toClient, toServer: this.awaited ? [] : this.drain(connection, true) };
  }

  /** True when the prepare's answer is complete. */
  private answerPacket(awaited: Awaited, packet: { payload: Buffer; framed: Buffer; sequenceId: number }, connection: ConnectionStatements, toClient: Buffer[]): boolean {
    const payload = packet.payload;
    if (awaited.left === undefined) {
      if (payload[0] !== ResponseHeader.Ok || payload.length < 9) {
        // ERR: the client's prepare gets it; an injected one answers the held command with it.
        if (awaited.own) awaited.packets.push(packet.framed);
        else {
          const held = awaited.held ? takePacket(awaited.held) : undefined;
          awaited.held = undefined;
          if (held && held.payload[0] !== Command.StmtSendLongData) toClient.push(encodePacket(sequenceIdAfter(0, held.payload.length), payload));
        }
        return true;
      }
      const serverId = payload.readUInt32LE(1);
      const columns = payload.readUInt16LE(5);
      const params = payload.readUInt16LE(7);
      this.remember(connection, awaited.key, serverId);
      if (awaited.own) {
        const id = ++this.lastId;
        (this.statements ??= new Map()).set(id, { key: awaited.key, sql: awaited.sql, params });
        const rewritten = Buffer.from(payload);
        rewritten.writeUInt32LE(id, 1);
        awaited.packets.push(encodePacket(packet.sequenceId, rewritten));
      }
      const eofs = hasCapability(this.capabilities, Capability.DeprecateEof) ? 0 : (columns > 0 ? 1 : 0) + (params > 0 ? 1 : 0);
      awaited.left = columns + params + eofs;
      return awaited.left === 0;
    }
    if (awaited.own) awaited.packets.push(packet.framed);
    return --awaited.left === 0;
  }

  /** Records a server statement on the connection, closing the one it replaces and the least recently used past `max`. */
  private remember(connection: ConnectionStatements, key: string, serverId: number): void {
    const replaced = connection.prepared.get(key);
    connection.prepared.delete(key);
    connection.prepared.set(key, serverId);
    const closes: number[] = replaced !== undefined && replaced !== serverId ? [replaced] : [];
    while (connection.prepared.size > Math.max(1, this.max)) {
      const [oldest, id] = connection.prepared.entries().next().value as [string, number];
      connection.prepared.delete(oldest);
      closes.push(id);
    }
    // COM_STMT_CLOSE has no answer: it goes first with whatever is sent next.
    for (const id of closes) this.pendingCloses.push(encodePacket(0, stmtCommand(Command.StmtClose, id)));
  }

  /** Sends what can go now; stops at a prepare until its answer (and until `idle` before one). */
  private drain(connection: ConnectionStatements, idle: boolean): Buffer[] {
    const out: Buffer[] = this.pendingCloses;
    this.pendingCloses = [];
    /** A command sent (before, or just now) waits for its answer. */
    let outstanding = !idle || this.passing > 0 || this.continued;
    this.inbox = this.joinedInbox();
    this.needed = 0;
    while (this.inbox.length > 0 && !this.awaited) {
      if (this.passing > 0) {
        const part = this.inbox.subarray(0, this.passing);
        this.passing -= part.length;
        this.inbox = this.inbox.subarray(part.length);
        out.push(part);
        continue;
      }
      if (this.inbox.length < PACKET_HEADER_LENGTH) break;
      const length = this.inbox.readUIntLE(0, 3);
      const sequenceId = this.inbox[3]!;
      if (length > 0 && this.inbox.length === PACKET_HEADER_LENGTH) {
        this.needed = PACKET_HEADER_LENGTH + 1;
        break;
      }
      const command = length > 0 ? this.inbox[PACKET_HEADER_LENGTH]! : -1;
      const isCommand = !this.continued && !this.infile && sequenceId === 0 && length > 0;
      if (!isCommand || !isStatementCommand(command)) {
        if (this.infile && !this.continued && length === 0) this.infile = false;
        this.continued = length === MAX_PHYSICAL_PAYLOAD;
        if (isCommand && command !== Command.Quit) outstanding = true;
        // The server drops the session's statements: the client's ids and the connection's go with them.
        if (isCommand && command === Command.ResetConnection) this.forgetAll(connection);
        this.passing = PACKET_HEADER_LENGTH + length;
        continue;
      }
      const packet = takePacket(this.inbox);
      if (!packet) {
        this.needed = bytesNeeded(this.inbox);
        break;
      }
      const needsServer = command === Command.StmtPrepare || this.lacks(packet.payload, connection);
      if (needsServer && outstanding) break;
      this.inbox = this.inbox.subarray(packet.framed.length);
      const sent = this.statementCommand(packet.payload, packet.framed, connection);
      out.push(...sent);
      if (command !== Command.StmtClose && command !== Command.StmtSendLongData) outstanding = true;
    }
    // An empty view would keep the chunk it was cut from for as long as the client stays.
    if (this.inbox.length === 0) this.inbox = EMPTY;
    return out;
  }

  /** The inbox with the pending chunks joined to it (one copy). */
  private joinedInbox(): Buffer {
    if (this.pending.length === 0) return this.inbox;
    const joined = Buffer.concat([this.inbox, ...this.pending], this.inbox.length + this.pendingLength);
    this.pending = [];
    this.pendingLength = 0;
    return joined;
  }

  /** The connection's statements are gone (COM_RESET_CONNECTION, COM_CHANGE_USER), and with them the client's. */
  forgetAll(connection: ConnectionStatements): void {
    connection.prepared.clear();
    this.statements?.clear();
    this.longData?.clear();
    this.cursors?.clear();
  }

  /** The command names a statement of the client that the connection does not have. */
  private lacks(payload: Buffer, connection: ConnectionStatements): boolean {
    if (payload[0] === Command.StmtClose || payload.length < 5) return false;
    const statement = this.statements?.get(payload.readUInt32LE(1));
    return statement !== undefined && !connection.prepared.has(statement.key);
  }

  private statementCommand(payload: Buffer, framed: Buffer, connection: ConnectionStatements): Buffer[] {
    const command = payload[0]!;
    if (command === Command.StmtPrepare) {
      const sql = payload.subarray(1);
      this.awaited = { key: sql.toString('latin1'), own: true, sql: Buffer.from(sql), packets: [] };
      return [framed];
    }
    if (payload.length < 5) return [framed];
    const id = payload.readUInt32LE(1);
    const statement = this.statements?.get(id);
    if (command === Command.StmtClose) {
      this.statements?.delete(id);
      this.longData?.delete(id);
      this.cursors?.delete(id);
      return [];
    }
    if (!statement) {
      // The server refuses an id it does not have, in order, as it would have refused this one.
      if (command === Command.StmtSendLongData) return [];
      return [encodePacket(0, withId(payload, UNKNOWN_ID))];
    }
    const serverId = connection.prepared.get(statement.key);
    if (serverId === undefined) {
      this.awaited = { key: statement.key, own: false, sql: statement.sql, packets: [], held: framed };
      return [encodePacket(0, Buffer.concat([Buffer.from([Command.StmtPrepare]), statement.sql]))];
    }
    connection.prepared.delete(statement.key);
    connection.prepared.set(statement.key, serverId);
    switch (command) {
      case Command.StmtSendLongData:
        (this.longData ??= new Set()).add(id);
        break;
      case Command.StmtReset:
        this.longData?.delete(id);
        this.cursors?.delete(id);
        break;
      case Command.StmtExecute:
        this.longData?.delete(id);
        if (payload.length > 5 && (payload[5]! & CURSOR_TYPE_READ_ONLY) !== 0) (this.cursors ??= new Set()).add(id);
        else this.cursors?.delete(id);
        return [encodePacket(0, this.execute(statement, withId(payload, serverId)))];
      case Command.StmtBulkExecute:
        // Its types may rest on an earlier bulk execute's: keep the connection from now on.
        this.longData?.delete(id);
        this.pinReason = 'prepared-statement';
        break;
    }
    return [encodePacket(0, withId(payload, serverId))];
  }

  /** The EXECUTE with the parameter types sent (remembered from an earlier one when it relies on them). */
  private execute(statement: ClientStatement, payload: Buffer): Buffer {
    if (payload.length < 10) return payload;
    const attributes = hasCapability(this.capabilities, Capability.QueryAttributes);
    try {
      const reader = new MySqlPayloadReader(payload, 'COM_STMT_EXECUTE');
      reader.skip(10);
      let count = statement.params;
      if (attributes) count = statement.params > 0 || (payload[5]! & PARAMETER_COUNT_AVAILABLE) !== 0 ? reader.lenenc() : 0;
      if (count === 0) return payload;
      reader.skip((count + 7) >> 3);
      const flagAt = payload.length - reader.remaining;
      const bound = reader.u8();
      if (bound === 1) {
        const typesStart = payload.length - reader.remaining;
        for (let i = 0; i < count; i++) {
          reader.skip(2);
          if (attributes) reader.lenencBytes();
        }
        statement.types = Buffer.from(payload.subarray(typesStart, payload.length - reader.remaining));
        return payload;
      }
      if (!statement.types) return payload;
      return Buffer.concat([payload.subarray(0, flagAt), Buffer.from([1]), statement.types, payload.subarray(flagAt + 1)]);
    } catch {
      return payload;
    }
  }
}

/** One whole logical packet at the start of `bytes`: its payload, its bytes as framed, its last sequence id. */
function takePacket(bytes: Buffer): { payload: Buffer; framed: Buffer; sequenceId: number } | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  let sequenceId = 0;
  for (;;) {
    if (bytes.length < at + PACKET_HEADER_LENGTH) return undefined;
    const length = bytes.readUIntLE(at, 3);
    if (at === 0) sequenceId = bytes[3]!;
    if (bytes.length < at + PACKET_HEADER_LENGTH + length) return undefined;
    parts.push(bytes.subarray(at + PACKET_HEADER_LENGTH, at + PACKET_HEADER_LENGTH + length));
    at += PACKET_HEADER_LENGTH + length;
    if (length < MAX_PHYSICAL_PAYLOAD) break;
  }
  return { payload: parts.length === 1 ? parts[0]! : Buffer.concat(parts), framed: bytes.subarray(0, at), sequenceId };
}

/** How many bytes the logical packet at the start of `bytes` takes at least, as far as its headers there tell. */
function bytesNeeded(bytes: Buffer): number {
  let at = 0;
  for (;;) {
    if (bytes.length < at + PACKET_HEADER_LENGTH) return at + PACKET_HEADER_LENGTH;
    const length = bytes.readUIntLE(at, 3);
    at += PACKET_HEADER_LENGTH + length;
    if (length < MAX_PHYSICAL_PAYLOAD || bytes.length < at) return at;
  }
}

function withId(payload: Buffer, id: number): Buffer {
  const out = Buffer.from(payload);
  out.writeUInt32LE(id, 1);
  return out;
}

function stmtCommand(command: Command, id: number): Buffer {
  const out = Buffer.alloc(5);
  out[0] = command;
  out.writeUInt32LE(id, 1);
  return out;
}
