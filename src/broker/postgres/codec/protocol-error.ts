/** Bad bytes from a peer. The session turns it into an ErrorResponse (SQLSTATE 08P01) and closes. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}
