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
import { clientHold, type RelayFilter, type RelayHold } from '../../relay.js';
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
const ABORTED_MESSAGE =
  'Aborted connection: the server connection of this session went away (killed, or the server restarted); its transaction was rolled back. Connect again';

/**
 * The session around the relay: what it asks for connections, pins and its command gate. One
 * object per client with methods, not a bag of closures: an idle client keeps it for its session.
 */
export interface TransactionRelayHost {
  readonly capabilities: number;
  /** End the client at its next transaction boundary once its token has expired. */
  readonly expiry: PooledExpiry | undefined;
  /**
   * Made at the client's first bytes: the session's command gate (audit, KILL translation,
   * COM_CHANGE_USER), its audit hold under `broker.audit.on_failure: block` (see relay()), and the
   * mapper of its prepared statements onto whichever connection it holds (without one they pin).
   */
  gate(fail: (message: string) => void): RelayFilter | undefined;
  auditHold(): RelayHold | undefined;
  statements(): StatementMapper | undefined;
  /** A connection of the client's key; rejects with the ERR the client gets. */
  acquire(): Promise<Lease<MySqlServerConnection>>;
  /** Back to the pool between transactions (no reset: nothing of the client's is left on it). */
  giveBack(lease: Lease<MySqlServerConnection>): void;
  /** Attached (the server thread for the client's KILL) or not (undefined). */
  onAttach(connection: MySqlServerConnection | undefined): void;
  /** Once per client, when it is pinned. */
  onPin(reason: PinReason): void;
  /** Once, when the relay ended (the client's socket is ended or destroyed). */
  ended(result: TransactionRelayResult): void;
}

export interface TransactionRelayResult {
  error?: string;
  /** The connection the client still holds (pinned, or left mid-transaction), for the pool to reset or close. */
  lease?: Lease<MySqlServerConnection>;
  /** Set once the client sent anything (a lease implies it). */
  tracker?: ExchangeTracker;
  serverBroken: boolean;
}

type Hold = 'none' | 'next' | 'this';

const NOT_BROKEN: Omit<TransactionRelayResult, 'tracker' | 'lease'> = { serverBroken: false };

/**
 * A class whose per-command state (the exchange tracker, the gate, the statement mapper, the
 * server socket's listeners) is made at the client's first bytes: an idle client that never sent
 * a command keeps this object, its host and three listeners on its socket.
 */
export class TransactionRelay {
  private lease: Lease<MySqlServerConnection> | undefined;
  private attaching: Promise<MySqlServerConnection> | undefined;
  private pinned: PinReason | undefined;
  private holdNext: Hold = 'none';
  private finished = false;
  private held = false;
  private lostServer = false;
  /** Gated client bytes waiting for a connection (undefined until the client's first bytes). */
  private pending: Buffer[] | undefined;
  private tracker: ExchangeTracker | undefined;
  private statements: StatementMapper | undefined;
  private filter: RelayFilter | undefined;
  private audit: ReturnType<typeof clientHold> | undefined;
  /** The server socket's listeners, made with the rest at the client's first bytes. */
  private serverListeners: ServerListeners | undefined;

  constructor(
    private readonly client: Socket,
    private readonly host: TransactionRelayHost,
    early: Buffer,
  ) {
    client.on('error', this.onClientError);
    client.on('close', this.onClientGone);
    client.on('end', this.onClientGone);
    client.on('data', this.fromClient);
    host.expiry?.whenExpired(() => this.cutIfExpired());
    if (early.length > 0) this.fromClient(early);
    if (!this.auditHeld) client.resume();
  }

  /** The attached connection, after attaching one (COM_CHANGE_USER pins). */
  async attachFor(reason: PinReason): Promise<MySqlServerConnection> {
    this.pin(reason);
    return this.attach();
  }

  /** Stops passing server bytes to the client; returns how to go on. */
  hold(): () => void {
    this.held = true;
    const listeners = this.listeners();
    this.lease?.connection.socket.off('data', listeners.data);
    return () => {
      this.held = false;
      if (this.finished || !this.lease) return;
      this.lease.connection.socket.on('data', listeners.data);
      this.lease.connection.socket.resume();
    };
  }

  private get auditHeld(): boolean {
    return this.audit?.held ?? false;
  }

  private readonly onClientError = (e: Error): void => this.end({ error: `client: ${e.message}`, serverBroken: false });
  private readonly onClientGone = (): void => this.end(NOT_BROKEN);

  private readonly fromClient = (chunk: Buffer): void => {
    if (!this.pending) this.activate();
    const filter = this.filter;
    const passed = filter ? filter(chunk) : chunk;
    if (this.finished) return;
    if (Buffer.isBuffer(passed)) {
      if (passed.length > 0) this.pending!.push(passed);
    } else for (const part of passed) if (part.length > 0) this.pending!.push(part);
    this.pump();
    if (filter && !this.finished) this.audit?.after();
  };

  /** The client's first bytes: what following its commands takes. */
  private activate(): void {
    const host = this.host;
    this.pending = [];
    this.statements = host.statements();
    this.tracker = new ExchangeTracker(host.capabilities, (head, length) => this.onCommand(head, length), MAX_SCANNED_QUERY);
    this.filter = host.gate((message) => this.end({ error: message, serverBroken: false }));
    const hold = host.auditHold();
    if (hold) this.audit = clientHold(this.client, hold, () => !this.finished && !this.attaching && !this.lease?.connection.socket.writableNeedDrain);
    this.client.on('drain', this.listeners().drainClient);
  }

  private listeners(): ServerListeners {
    return (this.serverListeners ??= new ServerListeners(this));
  }

  private pin(reason: PinReason): void {
    if (this.pinned) return;
    this.pinned = reason;
    this.host.onPin(reason);
  }

  private onCommand(head: Buffer, length: number): void {
    if (this.holdNext === 'next') this.holdNext = 'this';
    const command = head[0]!;
    if (command !== Command.Query) {
      if (this.statements && isStatementCommand(command)) return;
      const reason = commandPin(command);
      if (reason) this.pin(reason);
      return;
    }
    if (this.pinned) return;
    if (length > head.length) return this.pin('unscanned');
    let sql: string;
    try {
      sql = decodeQuery(head, this.host.capabilities).sql;
    } catch {
      return this.pin('unscanned');
    }
    const verdict = scanQuery(sql);
    if (verdict.pin) this.pin(verdict.pin);
    else if (verdict.holdForNextTransaction) this.holdNext = 'next';
  }

  private end(result: Omit<TransactionRelayResult, 'tracker' | 'lease'>, last?: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    const client = this.client;
    client.off('data', this.fromClient);
    if (this.serverListeners) client.off('drain', this.serverListeners.drainClient);
    const holding = this.lease;
    if (holding) this.unlisten(holding.connection);
    if (last) client.end(last);
    else client.destroy();
    this.host.ended({ ...result, ...(this.tracker ? { tracker: this.tracker } : {}), ...(holding ? { lease: holding } : {}) });
  }

  /** @internal the server socket's 'data' */
  fromServer(chunk: Buffer): void {
    const tracker = this.tracker!;
    const client = this.client;
    const statements = this.statements;
    tracker.fromServer(chunk);
    if (!statements || !this.lease) {
      if (!client.write(chunk)) this.lease?.connection.socket.pause();
      this.cutIfExpired();
      this.maybeDetach();
      return;
    }
    const lease = this.lease;
    const socket = lease.connection.socket;
    const mapped = statements.fromServer(chunk, lease.connection, tracker.idle);
    let flowing = true;
    for (const part of mapped.toClient) flowing = client.write(part) && flowing;
    if (!flowing) socket.pause();
    for (const part of mapped.toServer) {
      const out = tracker.fromClient(part);
      if (out.length > 0) socket.write(out);
    }
    if (statements.pinReason) this.pin(statements.pinReason);
    // Cut before giving the connection back: it then goes back through the pool's reset, as a
    // pinned client's does (handed back as it is, a mapped client's cut lost its farewell).
    this.cutIfExpired();
    this.maybeDetach();
  }

  /** @internal the client's 'drain': the server socket paused for it reads on. */
  resumeServer(): void {
    this.lease?.connection.socket.resume();
  }

  /** @internal the server socket's 'drain' */
  resumeClient(): void {
    if (!this.auditHeld) this.client.resume();
  }

  /** At a transaction boundary (no connection, or one with every command answered outside a transaction) once the token expired. */
  private cutIfExpired(): void {
    const expiry = this.host.expiry;
    if (this.finished || !expiry?.due || this.attaching || this.held || (this.pending?.length ?? 0) > 0 || this.lostServer) return;
    if (this.lease && (!this.tracker!.idle || this.tracker!.inTransaction)) return;
    this.end(NOT_BROKEN, expiry.cut());
  }

  /** @internal the server socket's 'close' and 'error' */
  serverGone(): void {
    if (this.finished) return;
    // The connection died under the client (killed, failover): its transaction is gone. A command
    // waiting for its answer gets an ERR; otherwise the client's next command does.
    const tracker = this.tracker!;
    const answer = tracker.awaitingAnswer;
    const lost = this.lease!;
    this.unlisten(lost.connection);
    lost.connection.broken = true;
    this.lease = undefined;
    this.host.onAttach(undefined);
    lost.release(false);
    if (answer) return this.failClient({ code: ABORTED_CONNECTION, sqlState: '08S01', message: ABORTED_MESSAGE }, tracker.lastClientSequenceId, 'the server connection closed');
    // Half an answer: nothing sensible can follow it.
    if (!tracker.idle) return this.end({ error: 'the server connection closed in the middle of an answer', serverBroken: true });
    this.lostServer = true;
  }

  private listen(connection: MySqlServerConnection): void {
    const socket = connection.socket;
    const listeners = this.listeners();
    socket.setNoDelay(true);
    socket.on('data', listeners.data);
    socket.on('drain', listeners.drainServer);
    socket.on('close', listeners.gone);
    socket.on('error', listeners.gone);
    socket.resume();
  }

  private unlisten(connection: MySqlServerConnection): void {
    const socket = connection.socket;
    const listeners = this.listeners();
    socket.off('data', listeners.data);
    socket.off('drain', listeners.drainServer);
    socket.off('close', listeners.gone);
    socket.off('error', listeners.gone);
    socket.pause();
  }

  private failClient(err: ErrPacket, after: number, why: string): void {
    const client = this.client;
    client.off('data', this.fromClient);
    client.end(encodePacket((after + 1) & 0xff, encodeErr(err)));
    client.once('finish', () => this.end({ error: why, serverBroken: true }));
  }

  private attach(): Promise<MySqlServerConnection> {
    if (this.lease) return Promise.resolve(this.lease.connection);
    this.attaching ??= this.host.acquire().then(
      (taken) => {
        this.attaching = undefined;
        if (this.finished) {
          this.host.giveBack(taken);
          throw new Error('the client left');
        }
        this.lease = taken;
        this.listen(taken.connection);
        if (this.held) taken.connection.socket.off('data', this.listeners().data);
        this.host.onAttach(taken.connection);
        return taken.connection;
      },
      (error: unknown) => {
        this.attaching = undefined;
        throw error;
      },
    );
    return this.attaching;
  }

  private maybeDetach(): void {
    const lease = this.lease;
    if (!lease || this.pinned || this.held || this.pending!.length > 0 || this.holdNext === 'next' || this.finished || this.statements?.holding) return;
    const tracker = this.tracker!;
    if (!tracker.idle || tracker.inTransaction || lease.connection.broken) return;
    if (this.holdNext === 'this') this.holdNext = 'none';
    this.lease = undefined;
    this.unlisten(lease.connection);
    this.host.onAttach(undefined);
    this.host.giveBack(lease);
    // Paused for the connection's backpressure, whose drain it no longer hears.
    if (!this.auditHeld) this.client.resume();
  }

  /** Sends what waits to the attached connection, attaching one first. */
  private pump(): void {
    const pending = this.pending!;
    if (this.finished || pending.length === 0) return;
    if (this.lostServer) {
      return this.failClient({ code: ABORTED_CONNECTION, sqlState: '08S01', message: ABORTED_MESSAGE }, 0, 'the server connection closed');
    }
    const lease = this.lease;
    if (!lease) {
      if (pending.length === 1 && isQuit(pending[0]!)) return this.end(NOT_BROKEN);
      this.client.pause();
      this.attach().then(
        () => {
          if (!this.auditHeld) this.client.resume();
          this.pump();
        },
        (error: unknown) => {
          if (this.finished) return;
          const err = (error as { err?: ErrPacket }).err ?? { code: ABORTED_CONNECTION, sqlState: '08S01', message: String(error) };
          this.failClient(err, 0, err.message);
        },
      );
      return;
    }
    this.pending = [];
    const tracker = this.tracker!;
    const statements = this.statements;
    let flowing = true;
    const socket = lease.connection.socket;
    for (const part of pending) {
      const mapped = statements ? statements.fromClient(part, lease.connection, { idle: tracker.idle, infile: tracker.infile }) : [part];
      for (const bytes of mapped) {
        const out = tracker.fromClient(bytes);
        if (out.length > 0) flowing = socket.write(out);
      }
    }
    if (statements?.pinReason) this.pin(statements.pinReason);
    if (tracker.terminated) return this.end(NOT_BROKEN);
    if (!flowing) this.client.pause();
    this.maybeDetach();
  }
}

/** The listeners a relay puts on the server connection it holds (and the client's 'drain'), made once per client. */
class ServerListeners {
  readonly data: (chunk: Buffer) => void;
  readonly drainServer: () => void;
  readonly drainClient: () => void;
  readonly gone: () => void;

  constructor(relay: TransactionRelay) {
    this.data = (chunk) => relay.fromServer(chunk);
    this.drainServer = () => relay.resumeClient();
    this.drainClient = () => relay.resumeServer();
    this.gone = () => relay.serverGone();
  }
}

/** A lone COM_QUIT packet. */
function isQuit(bytes: Buffer): boolean {
  return bytes.length === 5 && bytes.readUIntLE(0, 3) === 1 && bytes[3] === 0 && bytes[4] === Command.Quit;
}
