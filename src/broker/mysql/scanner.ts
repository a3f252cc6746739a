/**
 * Finds logical packet boundaries in a byte stream without holding it: each packet's payload is
 * skipped by length, keeping only a copy of its first `headLength` bytes (for an audit tap: the
 * command byte and the start of a COM_QUERY text). Memory stays at most `headLength` + 4 bytes
 * whatever the packet sizes. The caller forwards the stream itself untouched. Pure.
 */
import {
  DEFAULT_MAX_PACKET_LENGTH,
  MAX_ALLOWED_PACKET_LIMIT,
  MAX_PHYSICAL_PAYLOAD,
  PACKET_HEADER_LENGTH,
  nextSequenceId,
  packetTooLargeError,
  packetsOutOfOrderError,
} from './codec/packets.js';

export interface ScannedPacket {
  /** Sequence id of the first physical packet (0 for a client command). */
  sequenceId: number;
  lastSequenceId: number;
  /** Logical payload length, continuation packets summed. */
  length: number;
  /** A copy of the first min(length, headLength) payload bytes; shorter than `length` when cut. */
  head: Buffer;
  /** Offset in the chunk just pushed where the packet ends (the next one starts). */
  end: number;
}

interface Current {
  sequenceId: number;
  lastSequenceId: number;
  length: number;
  head: Buffer;
  headFill: number;
}

export class PacketScanner {
  private readonly header = Buffer.alloc(PACKET_HEADER_LENGTH);
  private headerFill = 0;
  private current: Current | undefined;
  /** Payload bytes of the current physical packet still to come. */
  private remaining = 0;
  /** Whether the current physical packet is continued by another. */
  private continues = false;

  /**
   * @param headLength payload bytes to keep of each packet
   * @param maxPacketLength cap on a logical packet; the server enforces its own
   * max_allowed_packet, so the default is the largest it can be.
   */
  constructor(
    private readonly headLength = 0,
    private readonly maxPacketLength = MAX_ALLOWED_PACKET_LIMIT,
  ) {
    if (headLength > DEFAULT_MAX_PACKET_LENGTH) throw new RangeError(`head length ${headLength} is too large`);
  }

  /** True between the first byte of a packet and its last. */
  get inPacket(): boolean {
    return this.headerFill > 0 || this.current !== undefined;
  }

  /** Feeds a chunk; returns the logical packets that end in it, in order. */
  push(chunk: Buffer): ScannedPacket[] {
    const found: ScannedPacket[] = [];
    let offset = 0;
    for (;;) {
      const current = this.current;
      if (current && this.remaining > 0) {
        if (offset === chunk.length) break;
        const n = Math.min(this.remaining, chunk.length - offset);
        const keep = Math.min(n, current.head.length - current.headFill);
        if (keep > 0) current.headFill += chunk.copy(current.head, current.headFill, offset, offset + keep);
        this.remaining -= n;
        offset += n;
        continue;
      }
      if (current && !this.continues) {
        const { sequenceId, lastSequenceId, length, head, headFill } = current;
        found.push({ sequenceId, lastSequenceId, length, head: head.subarray(0, headFill), end: offset });
        this.current = undefined;
        continue;
      }
      if (offset === chunk.length) break;
      const n = Math.min(PACKET_HEADER_LENGTH - this.headerFill, chunk.length - offset);
      chunk.copy(this.header, this.headerFill, offset, offset + n);
      this.headerFill += n;
      offset += n;
      if (this.headerFill < PACKET_HEADER_LENGTH) break;
      this.headerFill = 0;
      this.startPhysical(this.header.readUIntLE(0, 3), this.header[3]!);
    }
    return found;
  }

  private startPhysical(length: number, sequenceId: number): void {
    const current = this.current;
    if (current) {
      if (sequenceId !== nextSequenceId(current.lastSequenceId)) throw packetsOutOfOrderError(sequenceId, current.lastSequenceId);
      current.lastSequenceId = sequenceId;
      current.length += length;
      if (current.length > this.maxPacketLength) throw packetTooLargeError(this.maxPacketLength);
    } else {
      if (length > this.maxPacketLength) throw packetTooLargeError(this.maxPacketLength);
      const headSize = length === MAX_PHYSICAL_PAYLOAD ? this.headLength : Math.min(this.headLength, length);
      this.current = { sequenceId, lastSequenceId: sequenceId, length, head: Buffer.allocUnsafe(headSize), headFill: 0 };
    }
    this.remaining = length;
    this.continues = length === MAX_PHYSICAL_PAYLOAD;
  }
}
