/**
 * The untyped packets a PostgreSQL connection may open with: SSLRequest, GSSENCRequest,
 * CancelRequest and StartupMessage. Each is `int32 length` (including itself) + `int32 code`
 * + body. FrameDecoder frames them (`nextStartupPacket`); this decodes and encodes them. Pure:
 * bytes in, typed packets out, PgProtocolError on bad input.
 */
import { PgProtocolError } from './protocol-error.js';

export const SSL_REQUEST_CODE = 80877103; // 1234 << 16 | 5679
export const GSSENC_REQUEST_CODE = 80877104; // 1234 << 16 | 5680
export const CANCEL_REQUEST_CODE = 80877102; // 1234 << 16 | 5678
export const PROTOCOL_3_0 = 3 << 16;

/** PostgreSQL itself caps the startup packet at 10 000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_LENGTH = 10_000;
const MAX_STARTUP_PARAMETERS = 64;
const MAX_CANCEL_KEY_LENGTH = 256; // protocol 3.2 allows longer keys than 4 bytes

export type StartupPacket =
  | { type: 'ssl-request' }
  | { type: 'gssenc-request' }
  | { type: 'cancel'; processId: number; secretKey: Buffer }
  | { type: 'startup'; major: number; minor: number; params: Record<string, string> };

/**
 * Decodes one initial packet from its body: what follows the length field, which FrameDecoder's
 * `nextStartupPacket` has checked (8 to MAX_STARTUP_LENGTH bytes in all).
 */
export function decodeStartupPacket(body: Buffer): StartupPacket {
  if (body.length < 4) throw new PgProtocolError('startup packet is truncated');
  const length = body.length + 4;
  const code = body.readInt32BE(0);
  switch (code) {
    case SSL_REQUEST_CODE:
      if (length !== 8) throw new PgProtocolError('SSLRequest must be 8 bytes');
      return { type: 'ssl-request' };
    case GSSENC_REQUEST_CODE:
      if (length !== 8) throw new PgProtocolError('GSSENCRequest must be 8 bytes');
      return { type: 'gssenc-request' };
    case CANCEL_REQUEST_CODE: {
      if (length < 16 || length > 12 + MAX_CANCEL_KEY_LENGTH) throw new PgProtocolError('CancelRequest has a bad length');
      return { type: 'cancel', processId: body.readInt32BE(4), secretKey: Buffer.from(body.subarray(8)) };
    }
    default: {
      const major = code >>> 16;
      const minor = code & 0xffff;
      if (major !== 3) throw new PgProtocolError(`unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.2`);
      return { type: 'startup', major, minor, params: parseStartupParams(body.subarray(4)) };
    }
  }
}

function parseStartupParams(body: Buffer): Record<string, string> {
  const params: Record<string, string> = Object.create(null);
  let offset = 0;
  let count = 0;
  while (offset < body.length) {
    if (body[offset] === 0) {
      if (offset !== body.length - 1) throw new PgProtocolError('startup packet has bytes after its terminator');
      if (params.user === undefined || params.user === '') throw new PgProtocolError('no PostgreSQL user name specified in startup packet');
      return params;
    }
    const nameEnd = body.indexOf(0, offset);
    if (nameEnd < 0) throw new PgProtocolError('startup packet parameter name is not terminated');
    const valueEnd = body.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) throw new PgProtocolError('startup packet parameter value is not terminated');
    if (++count > MAX_STARTUP_PARAMETERS) throw new PgProtocolError('startup packet has too many parameters');
    params[body.toString('utf8', offset, nameEnd)] = body.toString('utf8', nameEnd + 1, valueEnd);
    offset = valueEnd + 1;
  }
  throw new PgProtocolError('startup packet is not terminated');
}

/** StartupMessage for protocol 3.0 with the given parameters. */
export function encodeStartupMessage(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(params)) {
    parts.push(Buffer.from(`${name}\0${value}\0`, 'utf8'));
  }
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const packet = Buffer.allocUnsafe(8 + body.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(PROTOCOL_3_0, 4);
  body.copy(packet, 8);
  return packet;
}

export function encodeSslRequest(): Buffer {
  const packet = Buffer.allocUnsafe(8);
  packet.writeInt32BE(8, 0);
  packet.writeInt32BE(SSL_REQUEST_CODE, 4);
  return packet;
}

export function encodeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  const packet = Buffer.allocUnsafe(12 + secretKey.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(processId, 8);
  secretKey.copy(packet, 12);
  return packet;
}
