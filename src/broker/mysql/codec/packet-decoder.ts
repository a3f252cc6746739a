/**
 * The one streaming decoder of the MySQL protocol, for every phase and both directions: the
 * handshake reads its packets through it, the relay's command gate frames the client's stream
 * with it. It is fed chunks as they arrive (`push`) and asked for one logical packet at a time
 * (`next`), continuation packets joined. A packet that lies within a chunk comes out as a view
 * into it; a packet that spans chunks is copied once into a buffer of its known size (a logical
 * packet of 16 MiB or more, once more when its parts are joined). Each header is checked as it
 * completes: the cap, and the sequence ids of continuations.
 *
 * Nothing is decoded before it is asked for, so `rest` returns the bytes after the last packet
 * exactly as they came (the TLS handshake, or the first bytes to relay). With `headLength`, only
 * the first bytes of each payload are kept and the rest skipped by length: the command gate's
 * memory stays bounded whatever the packet sizes. Pure: no sockets. After a MySqlProtocolError the
 * decoder is spent.
 */
import {
  MAX_ALLOWED_PACKET_LIMIT,
  MAX_PHYSICAL_PAYLOAD,
  PACKET_HEADER_LENGTH,
  nextSequenceId,
  packetTooLargeError,
  packetsOutOfOrderError,
} from './packets.js';

export interface Packet {
  /** Sequence id of the first physical packet (0 for a client command). */
  sequenceId: number;
  /** Sequence id of the last physical packet; equal to `sequenceId` unless continued. Reply with the next one. */
  lastSequenceId: number;
  /** The logical payload's length, continuation packets summed. */
  length: number;
  /**
   * The payload, or its first `headLength` bytes (then shorter than `length`). A view into the
   * chunk it arrived in, unless it spanned chunks or was continued.
   */
  payload: Buffer;
}

export interface PacketDecoderOptions {
  /** Cap on a logical packet; a longer one is ER_NET_PACKET_TOO_LARGE. @default MAX_ALLOWED_PACKET_LIMIT (1 GiB, the largest max_allowed_packet) */
  maxPacketLength?: number;
  /**
   * Payload bytes kept of each packet; the rest is skipped. A function decides per packet from its
   * first header and first payload byte (undefined when empty). @default all
   */
  headLength?: number | HeadLength;
}

/** The payload bytes to keep of a packet: `length` is its first physical packet's. */
export type HeadLength = (sequenceId: number, length: number, first: number | undefined) => number;

const EMPTY: Buffer = Buffer.alloc(0);

export class PacketDecoder {
  private readonly maxPacketLength: number;
  /** A number for a fixed head (no closure per decoder: a relayed session keeps its decoders). */
  private readonly headLength: HeadLength | number;

  /** The chunk being decoded and how far. */
  private input: Buffer = EMPTY;
  private offset = 0;
  /**
   * A header split across chunks; made when one is. Not from Node's shared buffer pool: a decoder
   * lives as long as its session, and a small slice would keep a whole 8 KiB pool slab alive.
   */
  private header: Buffer | undefined;
  private headerFill = 0;
  /** A logical packet that spans chunks or is continued: its ids and length so far, kept bytes of its finished physical packets. */
  private started = false;
  private firstSequenceId = 0;
  private lastSequenceId = 0;
  private length = 0;
  private readonly parts: Buffer[] = [];
  private partsLength = 0;
  /** Whether bytes of it were skipped (beyond the head). */
  private skipped = false;
  /** Its head length, once its first payload byte was seen. */
  private head: number | undefined;
  /** Its physical packet in progress: length, kept bytes, payload bytes still to come. */
  private inPhysical = false;
  private physicalLength = 0;
  private body: Buffer | undefined;
  /** Whether `body` was sized yet (waits for the packet's first payload byte). */
  private bodySized = false;
  private bodyFill = 0;
  private remaining = 0;

  constructor(options: PacketDecoderOptions = {}) {
    this.maxPacketLength = options.maxPacketLength ?? MAX_ALLOWED_PACKET_LIMIT;
    this.headLength = options.headLength ?? Infinity;
  }

  /** Where decoding stands in the last pushed chunk: the end of the packet `next` last returned. */
  get position(): number {
    return this.offset;
  }

  /** Hands over the next chunk; call once `next` returned undefined. */
  push(chunk: Buffer): void {
    if (this.offset < this.input.length) throw new Error('PacketDecoder: a chunk was pushed before the last one was decoded');
    this.input = chunk;
    this.offset = 0;
  }

  /** The next whole logical packet, or undefined when more bytes are needed. */
  next(): Packet | undefined {
    const input = this.input;
    for (;;) {
      if (!this.inPhysical) {
        if (this.offset === input.length) return this.usedUp();
        let length: number;
        let sequenceId: number;
        if (this.headerFill === 0 && input.length - this.offset >= PACKET_HEADER_LENGTH) {
          length = input.readUIntLE(this.offset, 3);
          sequenceId = input[this.offset + 3]!;
          this.offset += PACKET_HEADER_LENGTH;
        } else {
          const header = (this.header ??= Buffer.alloc(PACKET_HEADER_LENGTH));
          const n = input.copy(header, this.headerFill, this.offset, Math.min(input.length, this.offset + PACKET_HEADER_LENGTH - this.headerFill));
          this.headerFill += n;
          this.offset += n;
          if (this.headerFill < PACKET_HEADER_LENGTH) return this.usedUp();
          this.headerFill = 0;
          length = header.readUIntLE(0, 3);
          sequenceId = header[3]!;
        }
        if (!this.started) {
          if (length > this.maxPacketLength) throw packetTooLargeError(this.maxPacketLength);
          if (length < MAX_PHYSICAL_PAYLOAD && input.length - this.offset >= length) {
            // Whole within the chunk: a view, nothing copied.
            const start = this.offset;
            this.offset += length;
            const head = this.headFor(sequenceId, length, input[start]);
            return { sequenceId, lastSequenceId: sequenceId, length, payload: input.subarray(start, start + Math.min(length, head)) };
          }
          this.started = true;
          this.firstSequenceId = sequenceId;
          this.length = 0;
        } else if (sequenceId !== nextSequenceId(this.lastSequenceId)) {
          throw packetsOutOfOrderError(sequenceId, this.lastSequenceId);
        }
        this.lastSequenceId = sequenceId;
        this.length += length;
        if (this.length > this.maxPacketLength) throw packetTooLargeError(this.maxPacketLength);
        this.inPhysical = true;
        this.physicalLength = length;
        this.body = undefined;
        this.bodySized = false;
        this.bodyFill = 0;
        this.remaining = length;
      }
      const n = Math.min(this.remaining, input.length - this.offset);
      if (!this.bodySized && (n > 0 || this.remaining === 0)) {
        // A started packet's first physical packet is never empty, so its first byte decides the head.
        this.head ??= this.headFor(this.firstSequenceId, this.physicalLength, input[this.offset]);
        const keep = Math.min(this.physicalLength, this.head - this.partsLength);
        if (keep < this.physicalLength) this.skipped = true;
        this.body = keep > 0 ? Buffer.allocUnsafe(keep) : undefined;
        this.bodySized = true;
      }
      const body = this.body;
      if (body !== undefined && this.bodyFill < body.length) {
        this.bodyFill += input.copy(body, this.bodyFill, this.offset, this.offset + Math.min(n, body.length - this.bodyFill));
      }
      this.offset += n;
      this.remaining -= n;
      if (this.remaining > 0) return this.usedUp();
      this.inPhysical = false;
      this.body = undefined;
      if (body !== undefined) {
        this.parts.push(body);
        this.partsLength += body.length;
      }
      // A full-size physical packet is continued by the next one, possibly empty.
      if (this.physicalLength === MAX_PHYSICAL_PAYLOAD) continue;
      const parts = this.parts;
      const payload = parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.partsLength);
      const packet = { sequenceId: this.firstSequenceId, lastSequenceId: this.lastSequenceId, length: this.length, payload };
      parts.length = 0;
      this.partsLength = 0;
      this.started = false;
      this.skipped = false;
      this.head = undefined;
      return packet;
    }
  }

  private headFor(sequenceId: number, length: number, first: number | undefined): number {
    const head = this.headLength;
    return typeof head === 'number' ? head : head(sequenceId, length, first);
  }

  /**
   * The chunk is decoded to its end: let go of it (a decoder outlives its chunks, and a relayed
   * session's can stay idle for hours: its last chunk, up to 64 KiB, would stay with it).
   */
  private usedUp(): undefined {
    this.input = EMPTY;
    this.offset = 0;
    return undefined;
  }

  /**
   * The bytes pushed and not yet returned, as they came (a packet in progress included); the
   * decoder is empty afterwards. Not possible while a packet is being cut to its head.
   */
  rest(): Buffer {
    const pieces: Buffer[] = [];
    if (this.started) {
      if (this.skipped) throw new Error('PacketDecoder: the skipped bytes of a packet are gone');
      let sequenceId = this.firstSequenceId;
      for (const part of this.parts) {
        pieces.push(physicalHeader(part.length, sequenceId), part);
        sequenceId = nextSequenceId(sequenceId);
      }
      if (this.inPhysical) pieces.push(physicalHeader(this.physicalLength, this.lastSequenceId), this.body?.subarray(0, this.bodyFill) ?? EMPTY);
    }
    if (this.headerFill > 0) pieces.push(Buffer.from(this.header!.subarray(0, this.headerFill)));
    const tail = this.input.subarray(this.offset);
    this.input = EMPTY;
    this.offset = 0;
    this.headerFill = 0;
    this.started = false;
    this.inPhysical = false;
    this.skipped = false;
    this.head = undefined;
    this.parts.length = 0;
    this.partsLength = 0;
    this.body = undefined;
    return pieces.length === 0 ? tail : Buffer.concat([...pieces, tail]);
  }
}

function physicalHeader(length: number, sequenceId: number): Buffer {
  const header = Buffer.allocUnsafe(PACKET_HEADER_LENGTH);
  header.writeUIntLE(length, 0, 3);
  header[3] = sequenceId;
  return header;
}
