/**
 * The relay of a MySQL client in a transaction pool: the client holds a server connection only
 * while it is inside a transaction (SERVER_STATUS_IN_TRANS in the last OK or EOF) or a command is
 * on its way or being answered. Its next command after that takes a connection of its key again
 * (any one: the client's bytes wait, the client is not read, meanwhile). Answers are streamed
 * through as they come. A command that leaves session state behind (session-pins.ts) pins the
 * client to its connection for the rest of its session; `SET TRANSACTION` keeps it through the
 * next transaction. A connection that dies under a client ends the client's session with an ERR.
 * With `expiry` (disconnect_expired), once the token has expired the client is ended where its
 * connection would be given back (pinned or not) and, holding none, at once.
 */
import type { Socket } from 'node:net';
import type { PooledExpiry } from '../../expiry-watch.js';
import { clientHold, type RelayHold, type RelayTap } from '../../relay.js';
import type { Lease } from '../../pool/pool-manager.js';
import { Command, decodeQuery } from '../codec/commands.js';
import { encodePacket } from '../codec/packets.js';
import { encodeErr, type ErrPacket } from '../codec/responses.js';
import { ExchangeTracker } from './exchange-tracker.js';
import type { MySqlServerConnection } from './server-connection.js';
import { commandPin, scanQuery, type PinReason } from './session-pins.js';
import { isStatementCommand, type StatementMapper } from './statement-mapper.js';

/** COM_QUERY text read for pins; a longer query pins ('unscanned'). */
const MAX_SCANNED_QUERY = 1024 * 1024;
/** ER_NEW_ABORTING_CONNECTION: the server connection went away under the client. */
const ABORTED_CONNECTION = 1184;

export interface TransactionRelayOptions {
  client: Socket;
  early: Buffer;
  capabilities: number;
  /** The session's command gate (audit, KILL translation, COM_CHANGE_USER). */
  tap?: RelayTap;
  /** Under `broker.audit.on_failure: block`: the client is not read while the audit waits (see relay()). */
  hold?: RelayHold;
  /** A connection of the client's key; rejects with the ERR the client gets. */
  acquire(): Promise<Lease<MySqlServerConnection>>;
  /** Back to the pool between transactions (no reset: nothing of the client's is left on it). */
  giveBack(lease: Lease<MySqlServerConnection>): void;
  /** Attached (the server thread for the client's KILL) or not (undefined). */
  onAttach(connection: MySqlServerConnection | undefined): void;
  /** Once per client, when it is pinned. */
  onPin(reason: PinReason): void;
  /** End the client at its next transaction boundary once its token has expired. */
  expiry?: PooledExpiry;
  /** Maps the client's prepared statements onto whichever connection it holds; without it they pin. */
  statements?: StatementMapper;
}

interface TransactionRelayResult {
  error?: string;
  /** The connection the client still holds (pinned, or left mid-transaction), for the pool to reset or close. */
  lease?: Lease<MySqlServerConnection>;
  tracker: ExchangeTracker;
  serverBroken: boolean;
}

export interface TransactionRelay {
  readonly done: Promise<TransactionRelayResult>;
  /** The attached connection's socket, after attaching one (COM_CHANGE_USER pins). */
  attachFor(reason: PinReason): Promise<MySqlServerConnection>;
  /** Stops passing server bytes to the client; returns how to go on. */
  hold(): () => void;
}

type Hold = 'none' | 'next' | 'this';

export function transactionRelay(o: TransactionRelayOptions): TransactionRelay {
  const { client, statements } = o;
  let lease: Lease<MySqlServerConnection> | undefined;
  let attaching: Promise<MySqlServerConnection> | undefined;
  let pinned: PinReason | undefined;
  let hold: Hold = 'none';
  let finished = false;
  let held = false;
  /** Gated client bytes waiting for a connection. */
  let pending: Buffer[] = [];
  let resolveDone!: (result: TransactionRelayResult) => void;
  const done = new Promise<TransactionRelayResult>((resolve) => (resolveDone = resolve));

  const pin = (reason: PinReason): void => {
    if (pinned) return;
    pinned = reason;
    o.onPin(reason);
  };
  const onCommand = (head: Buffer, length: number): void => {
    if (hold === 'next') hold = 'this';
    const command = head[0]!;
    if (command !== Command.Query) {
      if (statements && isStatementCommand(command)) return;
      const reason = commandPin(command);
      if (reason) pin(reason);
      return;
    }
    if (pinned) return;
    if (length > head.length) return pin('unscanned');
    let sql: string;
    try {
      sql = decodeQuery(head, o.capabilities).sql;
    } catch {
      return pin('unscanned');
    }
    const verdict = scanQuery(sql);
    if (verdict.pin) pin(verdict.pin);
    else if (verdict.holdForNextTransaction) hold = 'next';
  };
  const tracker = new ExchangeTracker(o.capabilities, onCommand, MAX_SCANNED_QUERY);

  const end = (result: Omit<TransactionRelayResult, 'tracker' | 'lease'>, last?: Buffer): void => {
    if (finished) return;
    finished = true;
    client.off('data', fromClient);
    client.off('drain', resumeServer);
    const holding = lease;
    if (holding) unlisten(holding.connection);
    if (last) client.end(last);
    else client.destroy();
    resolveDone({ ...result, tracker, ...(holding ? { lease: holding } : {}) });
  };

  const audit = clientHold(client, o.hold, () => !finished && !attaching && !lease?.connection.socket.writableNeedDrain);
  const resumeClient = (): void => {
    if (!audit.held) client.resume();
  };
  const resumeServer = (): void => {
    lease?.connection.socket.resume();
  };
  const fromServer = (chunk: Buffer): void => {
    tracker.fromServer(chunk);
    if (!statements || !lease) {
      if (!client.write(chunk)) lease?.connection.socket.pause();
      cutIfExpired();
      maybeDetach();
      return;
    }
    const socket = lease.connection.socket;
    const mapped = statements.fromServer(chunk, lease.connection, tracker.idle);
    let flowing = true;
    for (const part of mapped.toClient) flowing = client.write(part) && flowing;
    if (!flowing) socket.pause();
    for (const part of mapped.toServer) {
      const out = tracker.fromClient(part);
      if (out.length > 0) socket.write(out);
    }
    if (statements.pinReason) pin(statements.pinReason);
    // Cut before giving the connection back: it then goes back through the pool's reset, as a
    // pinned client's does (handed back as it is, a mapped client's cut lost its farewell).
    cutIfExpired();
    maybeDetach();
  };

  /** At a transaction boundary (no connection, or one with every command answered outside a transaction) once the token expired. */
  function cutIfExpired(): void {
    const expiry = o.expiry;
    if (finished || !expiry?.due || attaching || held || pending.length > 0 || lostServer) return;
    if (lease && (!tracker.idle || tracker.inTransaction)) return;
    end({ serverBroken: false }, expiry.cut());
  }
  const serverGone = (): void => {
    if (finished) return;
    // The connection died under the client (killed, failover): its transaction is gone. A command
    // waiting for its answer gets an ERR; otherwise the client's next command does.
    const answer = tracker.awaitingAnswer;
    const lost = lease!;
    unlisten(lost.connection);
    lost.connection.broken = true;
    lease = undefined;
    o.onAttach(undefined);
    lost.release(false);
    if (answer) return failClient({ code: ABORTED_CONNECTION, sqlState: '08S01', message: abortedMessage() }, tracker.lastClientSequenceId, 'the server connection closed');
    // Half an answer: nothing sensible can follow it.
    if (!tracker.idle) return end({ error: 'the server connection closed in the middle of an answer', serverBroken: true });
    lostServer = true;
  };
  let lostServer = false;
  const serverError = (): void => serverGone();

  function listen(connection: MySqlServerConnection): void {
    const socket = connection.socket;
    socket.setNoDelay(true);
    socket.on('data', fromServer);
    socket.on('drain', resumeClient);
    socket.on('close', serverGone);
    socket.on('error', serverError);
    socket.resume();
  }

  function unlisten(connection: MySqlServerConnection): void {
    const socket = connection.socket;
    socket.off('data', fromServer);
    socket.off('drain', resumeClient);
    socket.off('close', serverGone);
    socket.off('error', serverError);
    socket.pause();
  }

  function abortedMessage(): string {
    return 'Aborted connection: the server connection of this session went away (killed, or the server restarted); its transaction was rolled back. Connect again';
  }

  function failClient(err: ErrPacket, after: number, why: string): void {
    client.off('data', fromClient);
    client.end(encodePacket((after + 1) & 0xff, encodeErr(err)));
    client.once('finish', () => end({ error: why, serverBroken: true }));
  }

  function attach(): Promise<MySqlServerConnection> {
    if (lease) return Promise.resolve(lease.connection);
    attaching ??= o.acquire().then(
      (taken) => {
        attaching = undefined;
        if (finished) {
          o.giveBack(taken);
          throw new Error('the client left');
        }
        lease = taken;
        listen(taken.connection);
        if (held) taken.connection.socket.off('data', fromServer);
        o.onAttach(taken.connection);
        return taken.connection;
      },
      (error: unknown) => {
        attaching = undefined;
        throw error;
      },
    );
    return attaching;
  }

  function maybeDetach(): void {
    if (!lease || pinned || held || pending.length > 0 || hold === 'next' || finished || statements?.holding) return;
    if (!tracker.idle || tracker.inTransaction || lease.connection.broken) return;
    if (hold === 'this') hold = 'none';
    const free = lease;
    lease = undefined;
    unlisten(free.connection);
    o.onAttach(undefined);
    o.giveBack(free);
    // Paused for the connection's backpressure, whose drain it no longer hears.
    if (!audit.held) client.resume();
  }

  /** Sends what waits to the attached connection, attaching one first. */
  function pump(): void {
    if (finished || pending.length === 0) return;
    if (lostServer) {
      return failClient({ code: ABORTED_CONNECTION, sqlState: '08S01', message: abortedMessage() }, 0, 'the server connection closed');
    }
    if (!lease) {
      if (pending.length === 1 && isQuit(pending[0]!)) return end({ serverBroken: false });
      client.pause();
      attach().then(
        () => {
          if (!audit.held) client.resume();
          pump();
        },
        (error: unknown) => {
          if (finished) return;
          const err = (error as { err?: ErrPacket }).err ?? { code: ABORTED_CONNECTION, sqlState: '08S01', message: String(error) };
          failClient(err, 0, err.message);
        },
      );
      return;
    }
    const parts = pending;
    pending = [];
    let flowing = true;
    const socket = lease.connection.socket;
    for (const part of parts) {
      const mapped = statements ? statements.fromClient(part, lease.connection, { idle: tracker.idle, infile: tracker.infile }) : [part];
      for (const bytes of mapped) {
        const out = tracker.fromClient(bytes);
        if (out.length > 0) flowing = socket.write(out);
      }
    }
    if (statements?.pinReason) pin(statements.pinReason);
    if (tracker.terminated) return end({ serverBroken: false });
    if (!flowing) client.pause();
    maybeDetach();
  }

  const filter = o.tap?.((message) => end({ error: message, serverBroken: false }));
  const fromClient = (chunk: Buffer): void => {
    const passed = filter ? filter(chunk) : chunk;
    if (finished) return;
    for (const part of Buffer.isBuffer(passed) ? [passed] : passed) if (part.length > 0) pending.push(part);
    pump();
    if (filter && !finished) audit.after();
  };
  client.on('error', (e) => end({ error: `client: ${e.message}`, serverBroken: false }));
  client.on('close', () => end({ serverBroken: false }));
  client.on('end', () => end({ serverBroken: false }));
  client.on('drain', resumeServer);
  client.on('data', fromClient);
  o.expiry?.whenExpired(cutIfExpired);
  if (o.early.length > 0) fromClient(o.early);
  if (!audit.held) client.resume();

  return {
    done,
    attachFor: async (reason) => {
      pin(reason);
      return attach();
    },
    hold: () => {
      held = true;
      lease?.connection.socket.off('data', fromServer);
      return () => {
        held = false;
        if (finished || !lease) return;
        lease.connection.socket.on('data', fromServer);
        lease.connection.socket.resume();
      };
    },
  };
}

/** A lone COM_QUIT packet. */
function isQuit(bytes: Buffer): boolean {
  return bytes.length === 5 && bytes.readUIntLE(0, 3) === 1 && bytes[3] === 0 && bytes[4] === Command.Quit;
}
