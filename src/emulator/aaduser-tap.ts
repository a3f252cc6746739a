/**
 * The client→MariaDB stream of an emulated MySQL session, watched for `CREATE AADUSER` (Azure's
 * statement, which MariaDB lacks). Pure: every other byte passes on as it comes; only a COM_QUERY
 * short enough to be that statement waits until it is whole (at most ~4 KiB), and is then either
 * passed on or handed to the front to answer itself.
 *
 * A physical packet with sequence id 0 starts a command, except in LOCAL INFILE data, whose ids
 * count on and wrap: a 0 that follows a non-empty packet numbered 255 is more data.
 */
import { Command, decodeQuery } from '../broker/mysql/codec/commands.js';
import { PACKET_HEADER_LENGTH } from '../broker/mysql/codec/packets.js';
import { isCreateAadUser, MAX_CREATE_AADUSER_TEXT } from './create-aaduser.js';

export type TapAction =
  | { type: 'forward'; bytes: Buffer }
  /** Answer `sql` to the client in a packet numbered `replySequenceId`; MariaDB never sees it. */
  | { type: 'statement'; sql: string; replySequenceId: number };

const EMPTY = Buffer.alloc(0);

export class AadUserTap {
  /** Bytes of a packet not yet classified (a partial header, or a candidate query). */
  private held: Buffer = EMPTY;
  /** Payload bytes of the physical packet being passed on that are still to come. */
  private streaming = 0;
  private previous = { sequenceId: 0, length: 0 };

  /** @param capabilities those the client and server agreed on: they decide the COM_QUERY layout. */
  constructor(private readonly capabilities: number) {}

  push(chunk: Buffer): TapAction[] {
    const buf = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = EMPTY;
    const actions: TapAction[] = [];
    let rangeStart = 0;
    let at = 0;
    const flush = (to: number): void => {
      if (to > rangeStart) actions.push({ type: 'forward', bytes: rangeStart === 0 && to === buf.length ? buf : buf.subarray(rangeStart, to) });
    };
    while (at < buf.length) {
      if (this.streaming > 0) {
        const n = Math.min(this.streaming, buf.length - at);
        this.streaming -= n;
        at += n;
        continue;
      }
      const available = buf.length - at;
      if (available < PACKET_HEADER_LENGTH + 1) {
        // A header, and the command byte after it, decide what the packet is.
        const length = available >= PACKET_HEADER_LENGTH ? buf.readUIntLE(at, 3) : -1;
        if (length !== 0) break;
      }
      const length = buf.readUIntLE(at, 3);
      const sequenceId = buf[at + 3]!;
      const isCommand = sequenceId === 0 && !(this.previous.sequenceId === 0xff && this.previous.length > 0);
      const candidate = isCommand && length > 0 && length <= MAX_CREATE_AADUSER_TEXT + 1 && buf[at + PACKET_HEADER_LENGTH] === Command.Query;
      if (candidate) {
        const end = at + PACKET_HEADER_LENGTH + length;
        if (end > buf.length) break;
        const sql = queryText(buf.subarray(at + PACKET_HEADER_LENGTH, end), this.capabilities);
        if (sql !== undefined && isCreateAadUser(sql)) {
          flush(at);
          actions.push({ type: 'statement', sql, replySequenceId: 1 });
          rangeStart = end;
        }
        this.previous = { sequenceId, length };
        at = end;
        continue;
      }
      this.previous = { sequenceId, length };
      this.streaming = length;
      at += PACKET_HEADER_LENGTH;
    }
    flush(at);
    if (at < buf.length) this.held = Buffer.from(buf.subarray(at));
    return actions;
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
