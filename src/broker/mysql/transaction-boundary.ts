/**
 * When an unpooled MySQL session is at rest, for `disconnect_expired`: the pooled relays'
 * ExchangeTracker follows both streams on the side, and the session is at rest when every command
 * the client sent has been answered in full and the last status the server reported has no open
 * transaction. Where the tracker loses track, the session is never cut (never cutting is safe;
 * cutting inside a transaction is not).
 */
import type { BoundaryTracker, Farewell } from '../expiry-watch.js';
import { EXPIRED_HINT, EXPIRED_MESSAGE } from '../expiry-watch.js';
import { Command } from './codec/commands.js';
import { encodePacket } from './codec/packets.js';
import { encodeErr } from './codec/responses.js';
import { ExchangeTracker } from './pool/exchange-tracker.js';

/** `early`: the client's bytes that reached the relay before the watch. */
export function mysqlBoundary(capabilities: number, mariadbCapabilities: number, early: Buffer): BoundaryTracker {
  // COM_CHANGE_USER is answered by the session itself, never forwarded (command-gate.ts).
  const tracker = new ExchangeTracker(capabilities, undefined, undefined, { mariadbCapabilities, changeUserAnsweredByAzdb: true });
  if (early.length > 0) tracker.fromClient(early);
  return {
    fromServer: (chunk) => tracker.fromServer(chunk),
    fromClient: (chunk) => void tracker.fromClient(chunk),
    get atRest() {
      return tracker.idle && !tracker.inTransaction;
    },
  };
}

/** An ERR the client shows (what MySQL 8 sends an idle session it disconnects: 4031), then COM_QUIT to the server. */
export const MYSQL_FAREWELL: Farewell = {
  client: encodePacket(0, encodeErr({ code: 4031, sqlState: 'HY000', message: `The client was disconnected by azdb: ${EXPIRED_MESSAGE}. ${EXPIRED_HINT}` })),
  server: encodePacket(0, Buffer.from([Command.Quit])),
};
