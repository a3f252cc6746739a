/**
 * MySQL packet framing: a 4-byte header (3-byte little-endian payload length, 1-byte sequence id)
 * and the payload. A payload of exactly MAX_PHYSICAL_PAYLOAD bytes continues in the next physical
 * packet; the logical packet ends with a shorter one, possibly empty. Within one logical packet
 * the sequence ids increase by one (mod 256); between packets the session checks. This encodes
 * packets and counts their ids; PacketDecoder decodes a stream of them. Pure: no sockets.
 */
import { NetErrorCode, MySqlProtocolError } from './protocol-error.js';

export const PACKET_HEADER_LENGTH = 4;
/** 2^24 - 1: the largest physical payload, and the length that means "continued". */
export const MAX_PHYSICAL_PAYLOAD = 0xffffff;
/** The largest max_allowed_packet a server accepts; PacketDecoder's default cap. */
export const MAX_ALLOWED_PACKET_LIMIT = 1024 * 1024 * 1024;

export const nextSequenceId = (sequenceId: number): number => (sequenceId + 1) & 0xff;

/** Physical packets a payload of `payloadLength` bytes takes (a trailing empty one on exact multiples). */
function physicalPacketCount(payloadLength: number): number {
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
