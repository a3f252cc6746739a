/**
 * What a pooled MySQL relay must know to hand a server connection back: whether every command
 * the client sent has had its whole answer (no packet half-sent either way), and the server's
 * last status flags (SERVER_STATUS_IN_TRANS). Both streams are framed on the side with the
 * codec's PacketDecoder keeping only packet heads; answers are followed by shape: OK / ERR /
 * result sets (chained with SERVER_MORE_RESULTS_EXISTS, LOCAL INFILE in between), prepare
 * answers, field lists, cursor fetches. A command whose answer cannot be followed (binlog dumps,
 * a cursor under CLIENT_DEPRECATE_EOF) makes the tracker `lost`: the connection is never reused.
 * The client's COM_QUIT is cut from its stream: it ends the client's session, not the server
 * connection. Pure: no sockets.
 *
 * The pooled greeting never offers MariaDB's metadata caching nor MySQL's optional result set
 * metadata; an unpooled session's may (`mariadbCapabilities`, the capabilities agreed), and then a
 * result set's column count says whether column definitions follow.
 */
import { Command } from '../codec/commands.js';
import { Capability, MariaDbCapability, ServerStatus, hasCapability } from '../codec/constants.js';
import { PacketDecoder, type Packet } from '../codec/packet-decoder.js';
import { MAX_PHYSICAL_PAYLOAD, PACKET_HEADER_LENGTH } from '../codec/packets.js';
import { ResponseHeader } from '../codec/responses.js';
import { MySqlPayloadReader } from '../codec/values.js';

/** How a command is answered. */
type Answer = 'one' | 'result' | 'executed' | 'prepare' | 'fields' | 'rows';

export interface ExchangeTrackerOptions {
  /** MariaDB's extended capabilities agreed (MARIADB_CLIENT_CACHE_METADATA). */
  mariadbCapabilities?: number;
  /** COM_CHANGE_USER is answered by azdb, never by the server (an unpooled session's gate intercepts it). */
  changeUserAnsweredByAzdb?: boolean;
}

/** Where the answer in progress stands. */
type Phase =
  | { kind: 'first'; answer: Answer }
  /** Column definitions of a result set, then (without CLIENT_DEPRECATE_EOF) their EOF. */
  | { kind: 'columns'; left: number }
  | { kind: 'columns-eof' }
  /** The parameter and column definitions of a prepare answer. */
  | { kind: 'definitions'; left: number }
  | { kind: 'rows' }
  | { kind: 'infile' };

/** An EOF packet is shorter than this; a row starting with 0xfe (an 8-byte length) is longer. */
const EOF_MAX_LENGTH = 9;
const PROGRESS_CODE = 0xffff;
const CURSOR_TYPE_READ_ONLY = 0x01;
/** Bytes kept of each packet: OK's header, two 9-byte lengths and the status. */
const HEAD_LENGTH = 32;
/** Commands answered by nothing at all. */
const UNANSWERED: ReadonlySet<number> = new Set([Command.StmtClose, Command.StmtSendLongData, Command.Quit]);
/** Commands whose answers azdb does not follow (replication streams, MariaDB's COM_MULTI). */
const UNFOLLOWED: ReadonlySet<number> = new Set([
  Command.BinlogDump,
  Command.BinlogDumpGtid,
  Command.TableDump,
  Command.RegisterSlave,
  Command.Connect,
  Command.ConnectOut,
  Command.Daemon,
  Command.Clone,
  Command.SubscribeGroupReplicationStream,
  Command.Multi,
]);

const NO_OPTIONS: ExchangeTrackerOptions = {};

/** Bytes a logical packet of `length` payload bytes takes on the wire. */
function framedLength(length: number): number {
  return length + PACKET_HEADER_LENGTH * (Math.floor(length / MAX_PHYSICAL_PAYLOAD) + 1);
}

export class ExchangeTracker {
  /** Answers owed, after the one in progress. */
  private readonly owed: Answer[] = [];
  private phase: Phase | undefined;
  /** The server's status flags from its last OK or EOF. */
  status: number = ServerStatus.Autocommit;
  /** Something came that azdb cannot follow: never reuse the connection. */
  lost = false;
  /** The client sent COM_QUIT: nothing of its stream goes on after it. */
  terminated = false;
  private readonly client: PacketDecoder;
  private readonly server = new PacketDecoder({ headLength: HEAD_LENGTH });
  private clientFramed = 0;
  private clientPushed = 0;
  private serverFramed = 0;
  private serverPushed = 0;

  /** Sequence id of the client's last packet: an answer azdb makes up follows it. */
  lastClientSequenceId = 0;
  /** After a COM_CHANGE_USER azdb answers: the client's auth packets (sequence ids past 0) go to azdb. */
  private changingUser = false;

  constructor(
    private readonly capabilities: number,
    /** Each client command as it completes: its first `commandHeadLength` bytes and its length. */
    private readonly onCommand?: (head: Buffer, length: number) => void,
    commandHeadLength = HEAD_LENGTH,
    private readonly options: ExchangeTrackerOptions = NO_OPTIONS,
  ) {
    this.client = new PacketDecoder({ headLength: Math.max(HEAD_LENGTH, commandHeadLength) });
  }

  /** A result set's column count carries a "metadata follows" byte for this command's answer. */
  private metadataOptional(answer: Answer): boolean {
    if (hasCapability(this.capabilities, Capability.OptionalResultsetMetadata)) return true;
    return answer === 'executed' && ((this.options.mariadbCapabilities ?? 0) & MariaDbCapability.CacheMetadata) !== 0;
  }

  private get deprecateEof(): boolean {
    return hasCapability(this.capabilities, Capability.DeprecateEof);
  }

  /** The client's bytes to forward: `chunk`, or the part before its COM_QUIT (nothing after it). */
  fromClient(chunk: Buffer): Buffer {
    if (this.terminated) return chunk.subarray(0, 0);
    const chunkStart = this.clientPushed;
    this.clientPushed += chunk.length;
    this.client.push(chunk);
    for (let packet = this.next(this.client); packet; packet = this.next(this.client)) {
      const start = this.clientFramed;
      this.clientFramed += framedLength(packet.length);
      this.lastClientSequenceId = packet.lastSequenceId;
      if (this.phase?.kind === 'infile') {
        // LOCAL INFILE data, ended by an empty packet; then the server answers with OK or ERR.
        if (packet.length === 0) this.phase = { kind: 'first', answer: 'one' };
        continue;
      }
      if (this.changingUser && packet.sequenceId !== 0) continue;
      this.changingUser = false;
      if (packet.sequenceId !== 0 || packet.length === 0) {
        this.lost = true;
        continue;
      }
      const command = packet.payload[0]!;
      if (command === Command.Quit) {
        this.terminated = true;
        // A COM_QUIT split across chunks: its first bytes went on already.
        if (start < chunkStart) this.lost = true;
        return chunk.subarray(0, Math.max(0, start - chunkStart));
      }
      this.onCommand?.(packet.payload, packet.length);
      if (UNANSWERED.has(command)) continue;
      if (command === Command.ChangeUser && this.options.changeUserAnsweredByAzdb) {
        this.changingUser = true;
        continue;
      }
      if (UNFOLLOWED.has(command)) {
        this.lost = true;
        continue;
      }
      this.owe(command, packet.payload);
    }
    return chunk;
  }

  fromServer(chunk: Buffer): void {
    this.serverPushed += chunk.length;
    this.server.push(chunk);
    for (let packet = this.next(this.server); packet; packet = this.next(this.server)) {
      this.serverFramed += framedLength(packet.length);
      this.answer(packet);
    }
  }

  /** Every command answered, nothing half-sent or half-answered, nothing azdb lost track of. */
  get idle(): boolean {
    return (
      !this.lost &&
      this.phase === undefined &&
      this.owed.length === 0 &&
      this.clientFramed === this.clientPushed &&
      this.serverFramed === this.serverPushed
    );
  }

  /** A command waits for its answer and none of it came yet: an answer azdb makes up fits. */
  get awaitingAnswer(): boolean {
    return !this.lost && this.phase?.kind === 'first' && this.serverFramed === this.serverPushed && this.clientFramed === this.clientPushed;
  }

  /** The client is sending LOCAL INFILE data (up to its empty packet). */
  get infile(): boolean {
    return this.phase?.kind === 'infile';
  }

  get inTransaction(): boolean {
    return (this.status & ServerStatus.InTrans) !== 0;
  }

  private next(decoder: PacketDecoder): Packet | undefined {
    try {
      return decoder.next();
    } catch {
      // Bad framing ends the relay elsewhere (the gate, the client); here it only forbids reuse.
      this.lost = true;
      return undefined;
    }
  }

  private owe(command: number, payload: Buffer): void {
    let answer: Answer = 'one';
    switch (command) {
      case Command.Query:
      case Command.StmtBulkExecute:
        answer = 'result';
        break;
      case Command.StmtExecute:
        answer = 'executed';
        // flags at offset 5. A cursor's answer ends after the column definitions' EOF, which
        // says so; under CLIENT_DEPRECATE_EOF nothing does.
        if (this.deprecateEof && payload.length > 5 && (payload[5]! & CURSOR_TYPE_READ_ONLY) !== 0) this.lost = true;
        break;
      case Command.StmtPrepare:
        answer = 'prepare';
        break;
      case Command.FieldList:
        answer = 'fields';
        break;
      case Command.StmtFetch:
        answer = 'rows';
        break;
    }
    if (this.phase === undefined) this.phase = { kind: 'first', answer };
    else this.owed.push(answer);
  }

  private done(): void {
    const next = this.owed.shift();
    this.phase = next ? { kind: 'first', answer: next } : undefined;
  }

  private answer(packet: Packet): void {
    const phase = this.phase;
    const head = packet.payload;
    const first = head[0];
    if (phase === undefined) {
      // The server spoke unasked (an error before it closes): nothing to reuse.
      this.lost = true;
      return;
    }
    if (first === ResponseHeader.Err && packet.length >= 3 && head.length >= 3 && head.readUInt16LE(1) === PROGRESS_CODE) return;
    switch (phase.kind) {
      case 'first':
        return this.firstPacket(phase, packet);
      case 'definitions':
        if (--phase.left === 0) this.done();
        return;
      case 'columns':
        if (--phase.left === 0) this.phase = this.deprecateEof ? { kind: 'rows' } : { kind: 'columns-eof' };
        return;
      case 'columns-eof':
        this.noteStatus(packet);
        // A cursor was opened: the rows come with COM_STMT_FETCH.
        if (this.status & ServerStatus.CursorExists) this.done();
        else this.phase = { kind: 'rows' };
        return;
      case 'rows':
        if (first === ResponseHeader.Err) return this.done();
        if (this.isTerminator(packet)) {
          this.noteStatus(packet);
          if (this.status & ServerStatus.MoreResultsExist) this.phase = { kind: 'first', answer: 'result' };
          else this.done();
        }
        return;
      case 'infile':
        // The server speaks before the client's empty packet only to refuse: its ERR ends the command.
        if (first === ResponseHeader.Err) this.done();
        else this.lost = true;
        return;
    }
  }

  private firstPacket(phase: Extract<Phase, { kind: 'first' }>, packet: Packet): void {
    const head = packet.payload;
    const first = head[0];
    if (first === ResponseHeader.Err) return this.done();
    switch (phase.answer) {
      case 'one':
        if (first === ResponseHeader.Ok || (first === ResponseHeader.Eof && packet.length < EOF_MAX_LENGTH)) this.noteStatus(packet);
        return this.done();
      case 'rows':
      case 'fields':
        // Rows (or column definitions) up to the terminator; this packet may be it.
        this.phase = { kind: 'rows' };
        return this.answer(packet);
      case 'prepare': {
        if (first !== ResponseHeader.Ok || head.length < 9) return this.done();
        const columns = head.readUInt16LE(5);
        const params = head.readUInt16LE(7);
        const eofs = this.deprecateEof ? 0 : (columns > 0 ? 1 : 0) + (params > 0 ? 1 : 0);
        const packets = columns + params + eofs;
        if (packets === 0) return this.done();
        this.phase = { kind: 'definitions', left: packets };
        return;
      }
      case 'result':
      case 'executed': {
        if (first === ResponseHeader.Ok) {
          this.noteStatus(packet);
          if (this.status & ServerStatus.MoreResultsExist) return;
          return this.done();
        }
        if (first === ResponseHeader.LocalInfile) {
          this.phase = { kind: 'infile' };
          return;
        }
        let columns: number;
        let metadata = true;
        try {
          const reader = new MySqlPayloadReader(head, 'column count');
          columns = reader.lenenc();
          if (this.metadataOptional(phase.answer)) metadata = reader.u8() !== 0;
        } catch {
          this.lost = true;
          return;
        }
        if (columns === 0) {
          this.lost = true;
          return;
        }
        if (!metadata) this.phase = this.deprecateEof ? { kind: 'rows' } : { kind: 'columns-eof' };
        else this.phase = { kind: 'columns', left: columns };
        return;
      }
    }
  }

  /** EOF, or under CLIENT_DEPRECATE_EOF the OK with an 0xfe header that ends rows. */
  private isTerminator(packet: Packet): boolean {
    if (packet.payload[0] !== ResponseHeader.Eof) return false;
    return this.deprecateEof ? packet.length < MAX_PHYSICAL_PAYLOAD : packet.length < EOF_MAX_LENGTH;
  }

  private noteStatus(packet: Packet): void {
    const head = packet.payload;
    try {
      if (head[0] === ResponseHeader.Eof && packet.length < EOF_MAX_LENGTH) {
        if (head.length >= 5) this.status = head.readUInt16LE(3);
        return;
      }
      const reader = new MySqlPayloadReader(head, 'OK packet');
      reader.u8();
      reader.lenenc();
      reader.lenenc();
      this.status = reader.u16();
    } catch {
      this.lost = true;
    }
  }
}
