/** Bad bytes from a peer. The session turns it into an ErrorResponse (SQLSTATE 08P01) and closes. */
export class PgProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PgProtocolError';
  }
}
