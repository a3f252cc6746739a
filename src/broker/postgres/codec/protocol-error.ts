/** Bad bytes from a peer. The session turns it into an ErrorResponse (SQLSTATE 08P01) and closes. */
export class PgProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PgProtocolError';
  }
}

/** How PostgreSQL answers a refused opening packet: a FATAL error with this SQLSTATE, in the protocol-2 format for a client that asked for protocol 1 or 2. */
export interface StartupRefusalReply {
  code: string;
  protocol2: boolean;
  detail?: string;
}

/**
 * An opening packet PostgreSQL refuses, with the words and the answer its ProcessStartupPacket
 * gives. Without `reply` the server closes the connection without a byte and only logs the fault
 * (a bad length, a bad CancelRequest): a driver that gave up before its StartupMessage, and sent
 * Terminate instead, must see no error.
 */
export class PgStartupRefusal extends PgProtocolError {
  constructor(
    message: string,
    readonly reply?: StartupRefusalReply,
  ) {
    super(message);
    this.name = 'PgStartupRefusal';
  }
}
