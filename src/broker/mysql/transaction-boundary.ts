/**
 * When a MySQL session is at rest, for `disconnect_expired`: every command the client sent has
 * been answered in full, and the last status the server reported (an OK or EOF packet's flags)
 * has no open transaction (SERVER_STATUS_IN_TRANS clear).
 *
 * Responses are followed per command, as a client library does: OK / ERR, result sets (column
 * count, column definitions unless the metadata is skipped, EOF unless CLIENT_DEPRECATE_EOF,
 * rows, then the EOF or OK that ends them; more when SERVER_MORE_RESULTS_EXISTS), prepared
 * statements, LOCAL INFILE, MariaDB progress reports. A command it does not know makes it give
 * up: the session is then never cut (never cutting is safe; cutting inside a transaction is not).
 */
import type { BoundaryTracker, Farewell } from '../expiry-watch.js';
import { EXPIRED_HINT, EXPIRED_MESSAGE } from '../expiry-watch.js';
import { Capability, MariaDbCapability, ServerStatus } from './codec/constants.js';
import { encodePacket } from './codec/packets.js';
import { encodeErr } from './codec/responses.js';

const enum Command {
  Quit = 0x01,
  InitDb = 0x02,
  Query = 0x03,
  FieldList = 0x04,
  Statistics = 0x09,
  ProcessKill = 0x0c,
  Ping = 0x0e,
  ChangeUser = 0x11,
  StmtPrepare = 0x16,
  StmtExecute = 0x17,
  StmtSendLongData = 0x18,
  StmtClose = 0x19,
  StmtReset = 0x1a,
  SetOption = 0x1b,
  StmtFetch = 0x1c,
  ResetConnection = 0x1f,
}

/** Commands answered by one OK, ERR (or EOF) packet. */
const SIMPLE = new Set<number>([Command.InitDb, Command.ProcessKill, Command.Ping, Command.StmtReset, Command.SetOption, Command.ResetConnection]);
/** Commands the server does not answer (COM_CHANGE_USER is answered by azdb, never forwarded). */
const UNANSWERED = new Set<number>([Command.Quit, Command.StmtSendLongData, Command.StmtClose, Command.ChangeUser]);

const OK = 0x00;
const EOF = 0xfe;
const ERR = 0xff;
const LOCAL_INFILE = 0xfb;
const PROGRESS_CODE = 0xffff;
const MAX_PAYLOAD = 0xffffff;
/** Head bytes of a packet kept to decide on it. */
const HEAD = 16;

type Phase =
  | { kind: 'first'; command: number }
  | { kind: 'columns'; command: number; left: number; eofAfter: boolean }
  | { kind: 'eof'; then: Phase }
  | { kind: 'rows' }
  | { kind: 'infile' }
  /** Parameter definitions (+EOF), then column definitions (+EOF): `left` packets. */
  | { kind: 'prepare-defs'; left: number }
  | { kind: 'single' }
  | { kind: 'field-list' };

/** Splits one direction of the stream into packets, keeping each packet's sequence id and first bytes. */
class PacketHeads {
  private header = Buffer.alloc(4);
  private headerLength = 0;
  private remaining = 0;
  private head: number[] = [];
  private length = 0;
  private sequenceId = 0;
  /** The packet being read continues a 16-MiB one. */
  private continuation = false;
  private continues = false;

  constructor(private readonly onPacket: (head: Buffer, length: number, sequenceId: number, continuation: boolean) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.headerLength < 4) {
        const take = Math.min(4 - this.headerLength, chunk.length - at);
        chunk.copy(this.header, this.headerLength, at, at + take);
        this.headerLength += take;
        at += take;
        if (this.headerLength < 4) return;
        this.length = this.header.readUIntLE(0, 3);
        this.sequenceId = this.header[3]!;
        this.remaining = this.length;
        this.head = [];
        this.continuation = this.continues;
        this.continues = this.length === MAX_PAYLOAD;
        if (this.remaining === 0) this.finish();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      for (let i = 0; i < take && this.head.length < HEAD; i++) this.head.push(chunk[at + i]!);
      at += take;
      this.remaining -= take;
      if (this.remaining === 0) this.finish();
    }
  }

  /** A packet has started (its header is in) but not ended. */
  get inside(): boolean {
    return this.headerLength > 0;
  }

  private finish(): void {
    this.headerLength = 0;
    this.onPacket(Buffer.from(this.head), this.length, this.sequenceId, this.continuation);
  }
}

export function mysqlBoundary(capabilities: number, mariadbCapabilities: number, early: Buffer): BoundaryTracker {
  const deprecateEof = (capabilities & Capability.DeprecateEof) !== 0;
  const optionalMetadata = (capabilities & Capability.OptionalResultsetMetadata) !== 0;
  const cacheMetadata = (mariadbCapabilities & MariaDbCapability.CacheMetadata) !== 0;
  const progress = (mariadbCapabilities & MariaDbCapability.Progress) !== 0;
  /** What the server owes, oldest first: the phase of the current response, then the commands queued behind it. */
  const owed: Phase[] = [];
  let inTransaction = false;
  let lost = false;

  const status = (head: Buffer, at: number): void => {
    if (head.length >= at + 2) inTransaction = (head.readUInt16LE(at) & ServerStatus.InTrans) !== 0;
  };
  /** Status and MORE_RESULTS of an OK packet (0x00 or, ending rows under DEPRECATE_EOF, 0xfe). */
  const okPacket = (head: Buffer): boolean => {
    let at = 1;
    for (let i = 0; i < 2; i++) at += lenencSize(head[at]);
    status(head, at);
    return head.length >= at + 2 && (head.readUInt16LE(at) & ServerStatus.MoreResultsExist) !== 0;
  };
  /** Status and MORE_RESULTS of an EOF packet (0xfe, warnings, status). */
  const eofPacket = (head: Buffer): boolean => {
    status(head, 3);
    return head.length >= 5 && (head.readUInt16LE(3) & ServerStatus.MoreResultsExist) !== 0;
  };
  const done = (command: number, more: boolean): void => {
    owed.shift();
    if (more) owed.unshift({ kind: 'first', command });
  };
  const isTerminator = (head: Buffer, length: number): boolean => head[0] === EOF && (deprecateEof ? length < MAX_PAYLOAD : length < 9);

  const fromServer = new PacketHeads((head, length, _sequenceId, continuation) => {
    if (lost || continuation) return;
    const phase = owed[0];
    if (!phase) {
      lost = true; // the server spoke unasked: this tracker no longer knows where it is
      return;
    }
    const first = head[0];
    if (first === ERR && progress && head.length >= 3 && head.readUInt16LE(1) === PROGRESS_CODE) return;
    switch (phase.kind) {
      case 'first': {
        if (first === ERR) return void owed.shift();
        if (first === OK && phase.command !== Command.StmtPrepare) return done(phase.command, okPacket(head));
        if (first === LOCAL_INFILE) return void (owed[0] = { kind: 'infile' });
        if (phase.command === Command.StmtPrepare) {
          if (first !== OK || head.length < 9) return void (lost = true);
          const columns = head.readUInt16LE(5);
          const params = head.readUInt16LE(7);
          const eofs = deprecateEof ? 0 : (params > 0 ? 1 : 0) + (columns > 0 ? 1 : 0);
          if (params + columns === 0) return void owed.shift();
          return void (owed[0] = { kind: 'prepare-defs', left: params + columns + eofs });
        }
        // A result set: the column count, then (maybe) a byte saying whether metadata follows.
        const size = lenencSize(first);
        const count = lenencValue(head, 0);
        const skippable = optionalMetadata || (cacheMetadata && phase.command === Command.StmtExecute);
        const metadata = skippable ? head[size] !== 0 : true;
        if (!metadata || count === 0) return void (owed[0] = deprecateEof ? { kind: 'rows' } : { kind: 'eof', then: { kind: 'rows' } });
        return void (owed[0] = { kind: 'columns', command: phase.command, left: count, eofAfter: !deprecateEof });
      }
      case 'columns':
        if (--phase.left === 0) owed[0] = phase.eofAfter ? { kind: 'eof', then: { kind: 'rows' } } : { kind: 'rows' };
        return;
      case 'eof':
        owed[0] = phase.then;
        return;
      case 'rows':
        if (first === ERR) return void owed.shift();
        if (isTerminator(head, length)) {
          const more = deprecateEof ? okPacket(head) : eofPacket(head);
          owed.shift();
          if (more) owed.unshift({ kind: 'first', command: Command.Query });
        }
        return;
      case 'infile':
        if (first === OK) return done(Command.Query, okPacket(head));
        if (first === ERR) owed.shift();
        return;
      case 'prepare-defs':
        if (--phase.left === 0) owed.shift();
        return;
      case 'single':
        if (first === OK) okPacket(head);
        else if (first === EOF && length < 9) eofPacket(head);
        owed.shift();
        return;
      case 'field-list':
        if (first === ERR || isTerminator(head, length)) owed.shift();
        return;
    }
  });

  const fromClient = new PacketHeads((head, _length, sequenceId, continuation) => {
    if (lost || continuation || sequenceId !== 0) return; // LOCAL INFILE data, or a long packet's rest
    const command = head[0];
    if (command === undefined) return;
    if (UNANSWERED.has(command)) return;
    if (command === Command.Query || command === Command.StmtExecute || command === Command.StmtPrepare) owed.push({ kind: 'first', command });
    else if (command === Command.StmtFetch) owed.push({ kind: 'rows' });
    else if (SIMPLE.has(command) || command === Command.Statistics) owed.push({ kind: 'single' });
    else if (command === Command.FieldList) owed.push({ kind: 'field-list' });
    else lost = true;
  });
  if (early.length > 0) fromClient.push(early);

  return {
    fromServer: (chunk) => fromServer.push(chunk),
    fromClient: (chunk) => fromClient.push(chunk),
    get atRest() {
      return !lost && owed.length === 0 && !fromClient.inside && !fromServer.inside && !inTransaction;
    },
  };
}

/** An ERR the client shows (what MySQL 8 sends an idle session it disconnects: 4031), then COM_QUIT to the server. */
export const MYSQL_FAREWELL: Farewell = {
  client: encodePacket(0, encodeErr({ code: 4031, sqlState: 'HY000', message: `The client was disconnected by azdb: ${EXPIRED_MESSAGE}. ${EXPIRED_HINT}` })),
  server: encodePacket(0, Buffer.from([Command.Quit])),
};

function lenencSize(first: number | undefined): number {
  if (first === undefined || first < 0xfb) return 1;
  if (first === 0xfc) return 3;
  if (first === 0xfd) return 4;
  return 9;
}

function lenencValue(head: Buffer, at: number): number {
  const first = head[at] ?? 0;
  if (first < 0xfb) return first;
  if (first === 0xfc) return head.readUInt16LE(at + 1);
  if (first === 0xfd) return head.readUIntLE(at + 1, 3);
  return Number(head.readBigUInt64LE(at + 1));
}
