/**
 * The untyped packets a PostgreSQL connection may open with: SSLRequest, GSSENCRequest,
 * CancelRequest and StartupMessage. Each is `int32 length` (including itself) + `int32 code`
 * + body. FrameDecoder frames them (`nextStartupPacket`); this decodes and encodes them. Pure:
 * bytes in, typed packets out, PgStartupRefusal on what PostgreSQL refuses, answered as it does
 * (src/backend/tcop/backend_startup.c, ProcessStartupPacket).
 */
import { PgStartupRefusal } from './protocol-error.js';

export const SSL_REQUEST_CODE = 80877103; // 1234 << 16 | 5679
export const GSSENC_REQUEST_CODE = 80877104; // 1234 << 16 | 5680
export const CANCEL_REQUEST_CODE = 80877102; // 1234 << 16 | 5678
export const PROTOCOL_3_0 = 3 << 16;

/** PostgreSQL caps a startup packet at 10 000 bytes after its length word (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_LENGTH = 10_000;
const MAX_CANCEL_KEY_LENGTH = 256; // protocol 3.2 allows longer keys than 4 bytes

export type StartupPacket =
  | { type: 'ssl-request' }
  | { type: 'gssenc-request' }
  | { type: 'cancel'; processId: number; secretKey: Buffer }
  | { type: 'startup'; major: number; minor: number; params: Record<string, string> };

/** PostgreSQL's words for a length it will not read; it closes without answering. */
export const INVALID_STARTUP_LENGTH = 'invalid length of startup packet';

/**
 * Decodes one initial packet from its body: what follows the length field, which FrameDecoder's
 * `nextStartupPacket` has checked (4 to MAX_STARTUP_LENGTH bytes).
 */
export function decodeStartupPacket(body: Buffer): StartupPacket {
  if (body.length < 4) throw new PgStartupRefusal(INVALID_STARTUP_LENGTH);
  const code = body.readInt32BE(0);
  switch (code) {
    // PostgreSQL reads only the code of these two, whatever their length.
    case SSL_REQUEST_CODE:
      return { type: 'ssl-request' };
    case GSSENC_REQUEST_CODE:
      return { type: 'gssenc-request' };
    case CANCEL_REQUEST_CODE: {
      if (body.length < 12 || body.length > 8 + MAX_CANCEL_KEY_LENGTH) throw new PgStartupRefusal(INVALID_STARTUP_LENGTH);
      return { type: 'cancel', processId: body.readInt32BE(4), secretKey: Buffer.from(body.subarray(8)) };
    }
    default: {
      const major = code >>> 16;
      const minor = code & 0xffff;
      if (major !== 3) throw unsupportedProtocol(code);
      return { type: 'startup', major, minor, params: parseStartupParams(body.subarray(4)) };
    }
  }
}

/**
 * The refusal of a protocol version other than 3. The broker speaks 3.0 to its clients (a 3.2
 * client is negotiated down), as PostgreSQL 17 does. Like PostgreSQL it answers a client of
 * protocol 1 or 2 in their format, except for version 0.0, which its error reporting takes for
 * "no protocol chosen yet"; a repeated SSLRequest or GSSENCRequest is refused here too.
 */
export function unsupportedProtocol(code: number): PgStartupRefusal {
  const major = code >>> 16;
  const minor = code & 0xffff;
  const protocol2 = major < 3 && code !== 0;
  return new PgStartupRefusal(`unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`, { code: '0A000', protocol2 });
}

const badLayout = (): PgStartupRefusal =>
  new PgStartupRefusal('invalid startup packet layout: expected terminator as last byte', { code: '08P01', protocol2: false });

function parseStartupParams(body: Buffer): Record<string, string> {
  const params: Record<string, string> = Object.create(null);
  let offset = 0;
  while (offset < body.length) {
    if (body[offset] === 0) {
      if (offset !== body.length - 1) throw badLayout();
      if (params.user === undefined || params.user === '') {
        throw new PgStartupRefusal('no PostgreSQL user name specified in startup packet', { code: '28000', protocol2: false });
      }
      return params;
    }
    const nameEnd = body.indexOf(0, offset);
    const valueEnd = nameEnd < 0 ? -1 : body.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) throw badLayout();
    params[body.toString('utf8', offset, nameEnd)] = body.toString('utf8', nameEnd + 1, valueEnd);
    offset = valueEnd + 1;
  }
  throw badLayout();
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
