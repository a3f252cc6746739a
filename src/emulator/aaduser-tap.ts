/**
 * The client→MariaDB stream of an emulated MySQL session, watched for `CREATE AADUSER` (Azure's
 * statement, which MariaDB lacks). Pure: the stream is framed by the broker codec's PacketDecoder,
 * every byte passes on as it comes, and only a COM_QUERY short enough to be that statement waits
 * until it is whole (at most ~4 KiB), to be either passed on or handed to the front to answer;
 * a COM_CHANGE_USER (as small) is always handed to the front, which checks the token it brings.
 * A stream the decoder cannot frame is passed on untouched from there: MariaDB judges it.
 *
 * A packet with sequence id 0 starts a command, except in LOCAL INFILE data, whose ids count on
 * and wrap: a 0 that follows a non-empty packet numbered 255 is more data.
 */
import { Command, decodeQuery } from '../broker/mysql/codec/commands.js';
import { PacketDecoder, type Packet } from '../broker/mysql/codec/packet-decoder.js';
import { PACKET_HEADER_LENGTH } from '../broker/mysql/codec/packets.js';
import { isCreateAadUser, MAX_CREATE_AADUSER_TEXT } from './create-aaduser.js';

export type TapAction =
  | { type: 'forward'; bytes: Buffer }
  /** Answer `sql` to the client in a packet numbered `replySequenceId`; MariaDB never sees it. */
  | { type: 'statement'; sql: string; replySequenceId: number }
  /** A COM_CHANGE_USER for the front to answer; MariaDB never sees it. */
  | { type: 'change-user'; payload: Buffer; lastSequenceId: number };

const EMPTY = Buffer.alloc(0);
/** The longest COM_QUERY payload that can be the statement: the command byte and the text. */
const CANDIDATE_LENGTH = MAX_CREATE_AADUSER_TEXT + 1;

export class AadUserTap {
  private readonly decoder = new PacketDecoder({ headLength: CANDIDATE_LENGTH });
  /** Bytes of the packet in progress not passed on yet: a header too short to tell, or a candidate. */
  private held: Buffer = EMPTY;
  /** Whether the packet in progress is a candidate, once its header and command byte told. */
  private candidate: boolean | undefined;
  private previous: Pick<Packet, 'lastSequenceId' | 'length'> = { lastSequenceId: 0, length: 0 };
  /** The decoder gave up on the stream: everything passes on as it is. */
  private broken = false;

  /** @param capabilities those the client and server agreed on: they decide the COM_QUERY layout. */
  constructor(private readonly capabilities: number) {}

  push(chunk: Buffer): TapAction[] {
    if (this.broken) return [{ type: 'forward', bytes: chunk }];
    const out = new Actions(chunk);
    let cursor = 0;
    try {
      this.decoder.push(chunk);
      for (let packet = this.decoder.next(); packet !== undefined; packet = this.decoder.next()) {
        const end = this.decoder.position;
        const candidate = this.candidate ?? this.isCandidate(packet.sequenceId, packet.length, packet.payload[0]);
        const sql = candidate && packet.payload[0] === Command.Query ? queryText(packet.payload, this.capabilities) : undefined;
        if (candidate && packet.payload[0] === Command.ChangeUser) out.changeUser(Buffer.from(packet.payload), packet.lastSequenceId);
        else if (sql !== undefined && isCreateAadUser(sql)) out.statement(sql);
        else out.forward(this.held, cursor, end);
        this.held = EMPTY;
        this.candidate = undefined;
        this.previous = packet;
        cursor = end;
      }
    } catch {
      this.broken = true;
      out.forward(this.held, cursor, chunk.length);
      this.held = EMPTY;
      return out.actions();
    }
    if (cursor < chunk.length) this.takeTrailing(out, cursor);
    return out.actions();
  }

  /** Bytes of a packet that goes on in the next chunk: passed on, unless it may be the statement. */
  private takeTrailing(out: Actions, from: number): void {
    const chunk = out.chunk;
    if (this.candidate === undefined) {
      const start = this.held.length > 0 ? Buffer.concat([this.held, chunk.subarray(from, from + PACKET_HEADER_LENGTH + 1 - this.held.length)]) : chunk.subarray(from);
      if (start.length <= PACKET_HEADER_LENGTH) {
        this.held = Buffer.from(start);
        return;
      }
      this.candidate = this.isCandidate(start[PACKET_HEADER_LENGTH - 1]!, start.readUIntLE(0, 3), start[PACKET_HEADER_LENGTH]);
    }
    if (this.candidate) {
      this.held = Buffer.concat([this.held, chunk.subarray(from)]);
    } else {
      out.forward(this.held, from, chunk.length);
      this.held = EMPTY;
    }
  }

  private isCandidate(sequenceId: number, length: number, code: number | undefined): boolean {
    const isCommand = sequenceId === 0 && !(this.previous.lastSequenceId === 0xff && this.previous.length > 0);
    return isCommand && length > 0 && length <= CANDIDATE_LENGTH && (code === Command.Query || code === Command.ChangeUser);
  }
}

/** The actions of one chunk, neighbouring ranges merged so a whole chunk goes on as itself. */
class Actions {
  private readonly list: TapAction[] = [];
  private rangeStart = -1;
  private rangeEnd = -1;

  constructor(readonly chunk: Buffer) {}

  forward(prefix: Buffer, from: number, to: number): void {
    if (prefix.length > 0) {
      this.flush();
      this.list.push({ type: 'forward', bytes: prefix });
    }
    if (from === to) return;
    if (this.rangeEnd !== from) {
      this.flush();
      this.rangeStart = from;
    }
    this.rangeEnd = to;
  }

  statement(sql: string): void {
    this.flush();
    this.list.push({ type: 'statement', sql, replySequenceId: 1 });
  }

  changeUser(payload: Buffer, lastSequenceId: number): void {
    this.flush();
    this.list.push({ type: 'change-user', payload, lastSequenceId });
  }

  actions(): TapAction[] {
    this.flush();
    return this.list;
  }

  private flush(): void {
    if (this.rangeStart < 0) return;
    const { chunk } = this;
    this.list.push({ type: 'forward', bytes: this.rangeStart === 0 && this.rangeEnd === chunk.length ? chunk : chunk.subarray(this.rangeStart, this.rangeEnd) });
    this.rangeStart = -1;
    this.rangeEnd = -1;
  }
}

/** The text of a COM_QUERY; undefined when it is malformed (MariaDB then says so itself). */
function queryText(payload: Buffer, capabilities: number): string | undefined {
  try {
    return decodeQuery(payload, capabilities).sql;
  } catch {
    return undefined;
  }
}
