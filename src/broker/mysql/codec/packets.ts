/**
 * MySQL packet framing: a 4-byte header (3-byte little-endian payload length, 1-byte sequence id)
 * and the payload. A payload of exactly MAX_PHYSICAL_PAYLOAD bytes continues in the next physical
 * packet; the logical packet ends with a shorter one, possibly empty. Pure: no sockets.
 *
 * A logical packet carries both sequence ids: `sequenceId` of its first physical packet (0 for
 * a client command) and `lastSequenceId` of its last (reply with `lastSequenceId + 1`). Within
 * one logical packet the ids must increase by one (mod 256); between packets the session checks.
 */
import { NetErrorCode, MySqlProtocolError } from './protocol-error.js';

export const PACKET_HEADER_LENGTH = 4;
/** 2^24 - 1: the largest physical payload, and the length that means "continued". */
export const MAX_PHYSICAL_PAYLOAD = 0xffffff;
/** Default cap on one logical packet; max_allowed_packet defaults to 64 MiB (MySQL 8). */
export const DEFAULT_MAX_PACKET_LENGTH = 64 * 1024 * 1024;
/** The largest max_allowed_packet a server accepts; the scanner's default cap. */
export const MAX_ALLOWED_PACKET_LIMIT = 1024 * 1024 * 1024;

export const nextSequenceId = (sequenceId: number): number => (sequenceId + 1) & 0xff;

export interface PacketHeader {
  payloadLength: number;
  sequenceId: number;
}

/** The header at `offset`, or undefined when fewer than 4 bytes are there. Copies nothing. */
export function readPacketHeader(buffer: Buffer, offset = 0): PacketHeader | undefined {
  if (buffer.length - offset < PACKET_HEADER_LENGTH) return undefined;
  return { payloadLength: buffer.readUIntLE(offset, 3), sequenceId: buffer[offset + 3]! };
}

export interface Packet {
  /** Sequence id of the first physical packet. */
  sequenceId: number;
  /** Sequence id of the last physical packet; equal to `sequenceId` unless continued. */
  lastSequenceId: number;
  /** The logical payload; a view into the pushed chunk (valid until the next push) unless it spanned chunks. */
  payload: Buffer;
}

/** Physical packets a payload of `payloadLength` bytes takes (a trailing empty one on exact multiples). */
export function physicalPacketCount(payloadLength: number): number {
  return Math.floor(payloadLength / MAX_PHYSICAL_PAYLOAD) + 1;
}

/** The sequence id to use after sending `payloadLength` bytes starting at `sequenceId`. */
export function sequenceIdAfter(sequenceId: number, payloadLength: number): number {
  return (sequenceId + physicalPacketCount(payloadLength)) & 0xff;
}

/** Frames a payload, split into continuation packets when it is 2^24 - 1 bytes or longer. */
export function encodePacket(sequenceId: number, payload: Buffer): Buffer {
  if (!Number.isInteger(sequenceId) || sequenceId < 0 || sequenceId > 0xff) throw new RangeError(`bad sequence id ${sequenceId}`);
  const count = physicalPacketCount(payload.length);
  const out = Buffer.allocUnsafe(payload.length + count * PACKET_HEADER_LENGTH);
  let id = sequenceId;
  let from = 0;
  let to = 0;
  for (let i = 0; i < count; i++) {
    const length = Math.min(MAX_PHYSICAL_PAYLOAD, payload.length - from);
    out.writeUIntLE(length, to, 3);
    out[to + 3] = id;
    payload.copy(out, to + PACKET_HEADER_LENGTH, from, from + length);
    from += length;
    to += PACKET_HEADER_LENGTH + length;
    id = nextSequenceId(id);
  }
  return out;
}

export function packetTooLargeError(maxPacketLength: number): MySqlProtocolError {
  return new MySqlProtocolError(`packet larger than the limit of ${maxPacketLength} bytes`, NetErrorCode.PacketTooLarge);
}

export function packetsOutOfOrderError(sequenceId: number, previous: number): MySqlProtocolError {
  return new MySqlProtocolError(`packets out of order: sequence id ${sequenceId} continues ${previous}`, NetErrorCode.PacketsOutOfOrder);
}

/**
 * Frames exactly one logical packet from the front of `buffer`, or undefined when it is
 * incomplete (a parse step for a handshake reader). Throws as soon as a header exceeds the cap.
 */
export function readPacket(buffer: Buffer, maxPacketLength = DEFAULT_MAX_PACKET_LENGTH): { value: Packet; rest: Buffer } | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  let total = 0;
  let first = 0;
  let last = 0;
  for (;;) {
    const header = readPacketHeader(buffer, offset);
    if (!header) return undefined;
    if (parts.length === 0) first = header.sequenceId;
    else if (header.sequenceId !== nextSequenceId(last)) throw packetsOutOfOrderError(header.sequenceId, last);
    last = header.sequenceId;
    total += header.payloadLength;
    if (total > maxPacketLength) throw packetTooLargeError(maxPacketLength);
    const end = offset + PACKET_HEADER_LENGTH + header.payloadLength;
    if (end > buffer.length) return undefined;
    parts.push(buffer.subarray(offset + PACKET_HEADER_LENGTH, end));
    offset = end;
    if (header.payloadLength < MAX_PHYSICAL_PAYLOAD) break;
  }
  const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  return { value: { sequenceId: first, lastSequenceId: last, payload }, rest: buffer.subarray(offset) };
}

/**
 * Turns a byte stream into logical packets. Payloads are views into the pushed chunk when a
 * packet lies within it; a packet spanning chunks is filled into one buffer of its known size,
 * so a large packet arriving in small chunks costs one copy, not one per chunk. After a
 * MySqlProtocolError the decoder is spent: the session answers with an ERR packet and closes.
 */
export class PacketDecoder {
  private readonly header = Buffer.alloc(PACKET_HEADER_LENGTH);
  private headerFill = 0;
  /** A physical payload being filled across chunks. */
  private body: { sequenceId: number; payload: Buffer; filled: number } | undefined;
  /** Payloads of the continued physical packets of the current logical packet. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  private firstSequenceId = 0;
  private lastSequenceId = 0;

  constructor(private readonly maxPacketLength = DEFAULT_MAX_PACKET_LENGTH) {}

  /** Bytes held that do not yet make a whole logical packet. */
  get bufferedLength(): number {
    return this.headerFill + (this.body?.filled ?? 0) + this.partsLength;
  }

  /** Feeds a chunk; returns the logical packets it completes, in order. */
  push(chunk: Buffer): Packet[] {
    const packets: Packet[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const body = this.body;
      if (body) {
        const n = Math.min(body.payload.length - body.filled, chunk.length - offset);
        chunk.copy(body.payload, body.filled, offset, offset + n);
        body.filled += n;
        offset += n;
        if (body.filled === body.payload.length) {
          this.body = undefined;
          this.complete(body.sequenceId, body.payload, true, packets);
        }
        continue;
      }
      let length: number;
      let sequenceId: number;
      if (this.headerFill === 0 && chunk.length - offset >= PACKET_HEADER_LENGTH) {
        length = chunk.readUIntLE(offset, 3);
        sequenceId = chunk[offset + 3]!;
        offset += PACKET_HEADER_LENGTH;
      } else {
        const n = Math.min(PACKET_HEADER_LENGTH - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + n);
        this.headerFill += n;
        offset += n;
        if (this.headerFill < PACKET_HEADER_LENGTH) break;
        this.headerFill = 0;
        length = this.header.readUIntLE(0, 3);
        sequenceId = this.header[3]!;
      }
      if (this.parts.length > 0 && sequenceId !== nextSequenceId(this.lastSequenceId)) throw packetsOutOfOrderError(sequenceId, this.lastSequenceId);
      if (this.partsLength + length > this.maxPacketLength) throw packetTooLargeError(this.maxPacketLength);
      if (chunk.length - offset >= length) {
        this.complete(sequenceId, chunk.subarray(offset, offset + length), false, packets);
        offset += length;
      } else {
        const payload = Buffer.allocUnsafe(length);
        const n = chunk.copy(payload, 0, offset);
        offset += n;
        this.body = { sequenceId, payload, filled: n };
      }
    }
    return packets;
  }

  /** One physical packet is whole: emit it, or add it to the logical packet it continues. */
  private complete(sequenceId: number, payload: Buffer, owned: boolean, packets: Packet[]): void {
    const continues = payload.length === MAX_PHYSICAL_PAYLOAD;
    if (this.parts.length === 0 && !continues) {
      packets.push({ sequenceId, lastSequenceId: sequenceId, payload });
      return;
    }
    if (this.parts.length === 0) this.firstSequenceId = sequenceId;
    this.lastSequenceId = sequenceId;
    if (continues) {
      // A view into the chunk must not outlive this push.
      this.parts.push(owned ? payload : Buffer.from(payload));
      this.partsLength += payload.length;
      return;
    }
    const whole = Buffer.concat([...this.parts, payload], this.partsLength + payload.length);
    this.parts = [];
    this.partsLength = 0;
    packets.push({ sequenceId: this.firstSequenceId, lastSequenceId: sequenceId, payload: whole });
  }
}
