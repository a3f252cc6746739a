/**
 * Bad bytes from a MySQL peer. The session answers with an ERR packet carrying `errorCode` and
 * SQLSTATE 08S01, then closes.
 */

/** Server error codes for broken communication, all with SQLSTATE 08S01. */
export enum NetErrorCode {
  PacketTooLarge = 1153, // ER_NET_PACKET_TOO_LARGE: "Got a packet bigger than 'max_allowed_packet' bytes"
  PacketsOutOfOrder = 1156, // ER_NET_PACKETS_OUT_OF_ORDER: "Got packets out of order"
  ReadError = 1158, // ER_NET_READ_ERROR: "Got an error reading communication packets"
  ReadInterrupted = 1159, // ER_NET_READ_INTERRUPTED: "Got timeout reading communication packets"
}

export const PROTOCOL_ERROR_SQLSTATE = '08S01';

export class MySqlProtocolError extends Error {
  constructor(
    message: string,
    readonly errorCode: NetErrorCode = NetErrorCode.ReadError,
  ) {
    super(message);
    this.name = 'MySqlProtocolError';
  }
}
