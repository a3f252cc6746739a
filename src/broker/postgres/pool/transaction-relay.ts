/**
 * The relay of a transaction-mode session: azdb holds the client's session and lends it a server
 * connection per transaction. A connection is attached when the client sends a message while it
 * has none (its startup parameters applied first, see PoolMember.acquire) and released when the
 * server is ready for a query outside a transaction with nothing outstanding (the SessionTracker
 * says idleStatus() 'I'). What cannot be handed over (pin-scanner.ts) pins the client: from then
 * on it keeps its connection, as in session mode.
 *
 * The client's stream is split into messages (ClientStream, CopyData streamed through) so that
 * its SQL can be scanned and its prepared statements mapped (StatementMapper), a message passed
 * on unchanged as the bytes it came in; the server's passes through as it comes, less the replies
 * to what the mapper sent itself (ReplyFilter). Each stream is framed once: the SessionTracker
 * is told the messages ClientStream and ReplyFilter framed. When
 * the client goes, an attached connection is reset or discarded by the pool; when the server
 * connection goes, the client gets the server's FATAL (or 08006) and its session ends. With
 * `expiry` (disconnect_expired), once the token has expired the client is ended where a
 * connection would be released (or, pinned, at the same point) and, holding none, at once.
 */
import type { Socket } from 'node:net';
import { errorMessage } from '../../../errors.js';
import type { PooledExpiry } from '../../expiry-watch.js';
import { clientHold, type RelayFilter, type RelayHold, type RelayTap } from '../../relay.js';
import { HEADER_LENGTH } from '../codec/frames.js';
import { BackendCode, FrontendCode, encodeErrorResponse, parseSqlStart, querySqlEnd } from '../codec/messages.js';
import { ClientStream, TERMINATE, type ClientPiece } from './client-stream.js';
import { MAPPER_REPLIES, StatementMapper } from './statement-mapper.js';
import { joinBytes } from './join-bytes.js';
import type { Lease } from '../../pool/pool-manager.js';
import { mayAffectSession, sqlSessionEffects, type PinReason } from './pin-scanner.js';
import type { ServerConnection, ServerReader } from './server-connection.js';
import { ReplyFilter } from './reply-filter.js';
import { SERVER_TRACKED, SessionTracker } from './session-tracker.js';

/**
 * What the relay asks of its session: one object per client whose methods do it, so that a client
 * holds no closures for them (a pooled client idles for long; see docs/performance.md).
 */
export interface TransactionRelayHost {
  /**
   * A server connection with the client's parameters, handed to `receiver` (perhaps before this
   * returns); refused with AttachRefused (its ErrorResponse for the client) or another error.
   */
  attach(signal: AbortSignal, receiver: AttachReceiver): void;
  /** Back to the pool between transactions (nothing to reset). */
  releaseIdle(lease: Lease<ServerConnection>): void;
  /** Back to the pool when the session ends while attached: reset (tracker) or discarded (undefined). */
  releaseEnd(lease: Lease<ServerConnection>, tracker: SessionTracker | undefined): Promise<void>;
  pin(reason: PinReason): void;
  /** The connection attached now, for cancel requests. */
  attached(connection: ServerConnection | undefined): void;
  /** The session ended (once), after an attached connection went back; `error`: why, when it failed. */
  ended(error: string | undefined): void;
}

export interface TransactionRelayOptions {
  client: Socket;
  /** Client bytes read past the login. */
  early: Buffer;
  host: TransactionRelayHost;
  tap?: RelayTap;
  /** Under `broker.audit.on_failure: block`: the client is not read while the audit waits (see relay()). */
  hold?: RelayHold;
  /** Named prepared statements mapped onto each connection (at most this many per connection); 0: a named Parse pins. */
  maxPreparedStatements: number;
  /** End the client at its next transaction boundary once its token has expired. */
  expiry?: PooledExpiry;
}

/** The relay's side of an attach: it reads the connection in the turn it is granted. */
export interface AttachReceiver {
  attachGranted(lease: Lease<ServerConnection>): void;
  attachRefused(error: unknown): void;
}

export class AttachRefused extends Error {
  constructor(readonly reply: Buffer) {
    super('no server connection for the client');
  }
}

/** The server messages the relay reads (the tracker's, the mapper's, ErrorResponse); the rest pass unread. */
const READ_WITHOUT_MAPPER: ReadonlySet<number> = new Set([...SERVER_TRACKED, 0x45 /* E */]);
const READ_WITH_MAPPER: ReadonlySet<number> = new Set([...READ_WITHOUT_MAPPER, ...MAPPER_REPLIES]);

/**
 * Client bytes kept while the client waits for a connection before it is no longer read. The
 * client is not paused for every wait: pause() and resume() cost a tick and a read each, per
 * transaction, and a client that waits has usually sent all it will until it is answered.
 */
const MAX_PENDING_BYTES = 64 * 1024;

const serverGone = (): Buffer =>
  encodeErrorResponse({ severity: 'FATAL', code: '08006', message: 'the server connection closed during the transaction', hint: 'The session has ended; connect again (the next session gets a new server connection).' });

/** Starts relaying the client; its host is told when the session ends. */
export function transactionRelay(options: TransactionRelayOptions): void {
  new TransactionRelay(options).start(options.early);
}

/** The relay of each client socket, for the listeners every relayed client socket shares. */
const RELAY = Symbol('azdb transaction relay');
type RelayedSocket = Socket & { [RELAY]: TransactionRelay };

// One set of listener functions for every client: each finds its relay on the socket (`this`).
function clientData(this: RelayedSocket, chunk: Buffer): void {
  this[RELAY].fromClient(chunk);
}
function clientDrain(this: RelayedSocket): void {
  this[RELAY].resumeServer();
}
function clientError(this: RelayedSocket, error: Error): void {
  this[RELAY].end(`client: ${error.message}`);
}
function clientGone(this: RelayedSocket): void {
  this[RELAY].end();
}

/**
 * One client's relay. A class whose state is made when first needed: an idle client that never
 * sent a message holds this object, its socket's shared listeners and nothing else of the relay.
 * It is its attached connection's reader (ServerReader) too.
 */
class TransactionRelay implements ServerReader, AttachReceiver {
  private readonly client: Socket;
  private readonly host: TransactionRelayHost;
  private readonly maxPreparedStatements: number;
  private readonly expiry: PooledExpiry | undefined;
  private readonly filter: RelayFilter | undefined;
  private readonly audit: ReturnType<typeof clientHold> | undefined;
  /** Made at the client's first message. */
  private clientStream: ClientStream | undefined;
  /** Made at the first attach when statements are mapped (maxPreparedStatements > 0). */
  private statements: StatementMapper | undefined;
  private lease: Lease<ServerConnection> | undefined;
  // Attached: the tracker and filter of the connection's stream. They are made at the first
  // attach and serve every later one, as a connection is only handed back with both streams at
  // a message boundary (idleStatus), where they are as new.
  private tracker: SessionTracker | undefined;
  private replies: ReplyFilter | undefined;
  private reusable: { tracker: SessionTracker; replies: ReplyFilter } | undefined;
  private attaching = false;
  /** Ends the client's wait for a connection when it goes; one for all its transactions. */
  private goneSignal: AbortController | undefined;
  /** Client messages that wait for a connection, and the bytes of the chunks they came in. */
  private pending: ClientPiece[] | undefined;
  private pendingBytes = 0;
  /** The client is not read until a connection is attached: it sent MAX_PENDING_BYTES while it waited. */
  private pausedForWait = false;
  /** Messages for the attached connection, written once per client chunk (made at the first attach). */
  private outbox: Buffer[] | undefined;
  private pinned = false;
  private done = false;

  constructor(options: TransactionRelayOptions) {
    this.client = options.client;
    this.host = options.host;
    this.maxPreparedStatements = options.maxPreparedStatements;
    this.expiry = options.expiry;
    this.filter = options.tap?.((message) => this.end(message));
    this.audit = options.hold ? clientHold(options.client, options.hold, () => !this.done && !this.pausedForWait && !(this.lease && this.upstream().writableNeedDrain)) : undefined;
  }

  start(early: Buffer): void {
    const client = this.client as RelayedSocket;
    client[RELAY] = this;
    this.expiry?.whenExpired(() => this.cutIfExpired());
    client.on('error', clientError);
    client.on('close', clientGone);
    client.on('end', clientGone);
    client.on('drain', clientDrain);
    client.on('data', clientData);
    if (client.destroyed) {
      this.end();
      return;
    }
    if (early.length > 0) this.fromClient(early);
    if (!this.audit?.held) client.resume();
  }

  private upstream(): Socket {
    return this.lease!.connection.socket;
  }

  end(error?: string, last?: Buffer): void {
    if (this.done) return;
    this.done = true;
    const client = this.client;
    client.off('data', clientData);
    client.off('drain', clientDrain);
    this.goneSignal?.abort(new Error('the client went away'));
    const held = this.lease;
    const heldTracker = this.tracker;
    const broken = held ? held.connection.broken || held.connection.socket.destroyed : false;
    this.detach();
    if (last && !client.destroyed) client.end(last);
    else client.destroy();
    const host = this.host;
    if (held) void host.releaseEnd(held, broken ? undefined : heldTracker).finally(() => host.ended(error));
    else host.ended(error);
  }

  /** Stops relaying the attached connection; the caller hands it back. */
  private detach(): void {
    if (!this.lease) return;
    // Not paused: the pool's idle watch, or the reset's query, reads it next, in this same turn.
    const connection = this.lease.connection;
    if (connection.reader === this) connection.reader = undefined;
    this.lease = undefined;
    this.tracker = undefined;
    this.replies = undefined;
    this.host.attached(undefined);
  }

  private resumeClient(): void {
    if (!this.pausedForWait && !this.audit?.held) this.client.resume();
  }

  resumeServer(): void {
    if (this.lease) this.upstream().resume();
  }

  // ServerReader: what the attached connection's socket tells.
  data(chunk: Buffer): void {
    this.fromServer(chunk);
  }

  drain(): void {
    this.resumeClient();
  }

  gone(error?: Error): void {
    // The client has the server's FATAL already when it sent one.
    const farewell = this.replies?.fatal ? undefined : serverGone();
    this.end(error ? `upstream: ${error.message}` : 'the server connection closed', farewell);
  }

  private fromServer(chunk: Buffer): void {
    const { lease, tracker, replies } = this;
    if (!lease || !tracker || !replies) return;
    let out: Buffer;
    try {
      tracker.serverBytes(chunk.length);
      out = replies.push(chunk);
      tracker.serverFramedTo(replies.framedBytes);
    } catch (error) {
      // Never reused: the pool cannot tell where the server's stream stands.
      lease.connection.broken = true;
      this.end(`upstream broke the protocol: ${errorMessage(error)}`, serverGone());
      return;
    }
    // One write (one syscall) however many pieces the filter cut the chunk into.
    if (out.length > 0 && !this.client.write(out)) this.upstream().pause();
    if (!this.pinned && tracker.idleStatus() === 'I') {
      this.detach();
      this.host.releaseIdle(lease);
    }
    this.cutIfExpired();
  }

  /** At a transaction boundary (no connection, or a pinned one idle outside a transaction) once the token expired. */
  private cutIfExpired(): void {
    const expiry = this.expiry;
    if (this.done || !expiry?.due || this.attaching || (this.pending?.length ?? 0) > 0) return;
    if (this.lease && this.tracker?.idleStatus() !== 'I') return;
    this.end(undefined, expiry.cut());
  }

  fromClient(chunk: Buffer): void {
    const audited = this.filter ? this.filter(chunk) : chunk;
    if (this.done) return;
    const clientStream = (this.clientStream ??= new ClientStream());
    // No array made for the one chunk there is without an audit tap.
    const parts = Buffer.isBuffer(audited) ? undefined : audited;
    try {
      for (let i = 0, n = parts ? parts.length : 1; i < n; i++) {
        clientStream.push(parts ? parts[i]! : (audited as Buffer));
        for (let piece = clientStream.next(); piece !== undefined; piece = clientStream.next()) {
          if (piece === TERMINATE) {
            if (this.lease && !this.attaching) this.flush();
            this.end();
            return;
          }
          // A piece is a chunk the socket allocated for this read, a view of one, or a buffer of
          // its own when it spanned chunks: nothing reuses it, so one that waits is not copied.
          if (this.lease && !this.attaching) this.toServer(piece);
          else (this.pending ??= []).push(piece);
        }
      }
    } catch (error) {
      this.malformed(error);
      return;
    }
    if (this.lease && !this.attaching) this.flush();
    else {
      if (this.pending !== undefined) this.pendingBytes += chunk.length;
      if ((this.pending?.length ?? 0) > 0 && !this.attaching) this.attach();
      if (this.attaching && this.pendingBytes > MAX_PENDING_BYTES && !this.pausedForWait) {
        this.pausedForWait = true;
        this.client.pause();
      }
    }
    if (this.filter && !this.done) this.audit?.after();
  }

  private attach(): void {
    this.attaching = true;
    const gone = (this.goneSignal ??= new AbortController());
    this.host.attach(gone.signal, this);
  }

  attachRefused(error: unknown): void {
    this.attaching = false;
    if (error instanceof AttachRefused) this.end('no server connection for the client', error.reply);
    else this.end(errorMessage(error));
  }

  attachGranted(got: Lease<ServerConnection>): void {
    if (this.done) {
      this.host.releaseIdle(got);
      return;
    }
    this.lease = got;
    const reusable = (this.reusable ??= this.streamsOf(got.connection));
    reusable.tracker.parameters = got.connection.parameters;
    this.tracker = reusable.tracker;
    this.replies = reusable.replies;
    this.outbox ??= [];
    const socket = got.connection.socket;
    got.connection.reader = this;
    // Set at the TLS handshake (upstream-connect.ts) already: Node skips the syscall when it is unchanged.
    socket.setNoDelay(true);
    this.host.attached(got.connection);
    if (got.connection.broken || socket.destroyed) {
      this.end('the server connection closed', serverGone());
      return;
    }
    if (socket.isPaused()) socket.resume();
    const pending = this.pending!;
    try {
      for (let i = 0; i < pending.length; i++) this.toServer(pending[i]!);
    } catch (error) {
      this.malformed(error);
      return;
    }
    // Emptied by pop: `length = 0` (or splice) would drop the array's store, made again next time.
    while (pending.length > 0) pending.pop();
    this.pendingBytes = 0;
    this.attaching = false;
    const flowing = this.flush();
    if (this.pausedForWait) {
      this.pausedForWait = false;
      if (flowing && !this.audit?.held) this.client.resume();
    }
  }

  /** The tracker and reply filter of the client's stream on a server connection (made once, at the first attach). */
  private streamsOf(connection: ServerConnection): { tracker: SessionTracker; replies: ReplyFilter } {
    const statements = this.maxPreparedStatements > 0 ? (this.statements = new StatementMapper(this.maxPreparedStatements)) : undefined;
    const tracker = new SessionTracker(connection.parameters);
    const replies = new ReplyFilter((message) => {
      // ReadyForQuery, one per transaction: its status byte read without a view of its payload.
      if (message.code === BackendCode.ReadyForQuery) tracker.readyForQuery(message.byte(0));
      else if (SERVER_TRACKED.has(message.code)) tracker.serverMessage(message);
      return statements ? statements.fromServer(message) : true;
    }, statements ? READ_WITH_MAPPER : READ_WITHOUT_MAPPER);
    return { tracker, replies };
  }

  /**
   * Scans and maps client messages for the attached connection, into the outbox; CopyData bytes
   * go as they are. The messages the mapper leaves alone go as they came, the piece whole when
   * none is rewritten (the tracker is told each one).
   */
  private toServer(piece: ClientPiece): void {
    if (!Buffer.isBuffer(piece)) {
      this.throughToServer(piece.through);
      return;
    }
    const connection = this.lease!.connection;
    const statements = this.statements;
    const tracker = this.tracker!;
    /** The piece's bytes up to here are in the outbox already (or were replaced). */
    let sent = 0;
    for (let offset = 0; offset < piece.length; ) {
      const code = piece[offset]!;
      const end = offset + 1 + piece.readInt32BE(offset + 1);
      const payloadStart = offset + HEADER_LENGTH;
      if (code === FrontendCode.Query || code === FrontendCode.Parse) {
        const sqlStart = code === FrontendCode.Parse ? parseSqlStart(piece, payloadStart, end) : payloadStart;
        const sqlEnd = code === FrontendCode.Parse ? piece.indexOf(0, sqlStart) : querySqlEnd(piece, payloadStart, end);
        // Most SQL has no word that could pin: it is never decoded into a string.
        if (mayAffectSession(piece, sqlStart, sqlEnd)) {
          const effects = sqlSessionEffects(piece.toString('utf8', sqlStart, sqlEnd));
          for (const reason of effects.pins) this.pin(reason);
          if (effects.resetsSession) {
            connection.settings.clear();
            connection.prepared.clear();
          }
        }
        // A named statement (its name is not empty).
        if (code === FrontendCode.Parse && !statements && piece[payloadStart] !== 0) this.pin('prepared_statement');
      }
      if (statements === undefined || statements.passes(code, piece, payloadStart, end)) {
        tracker.clientMessage(code, end - payloadStart);
      } else {
        const bytes = piece.subarray(offset, end);
        const out = statements.toServer({ code, length: end - payloadStart, payload: piece.subarray(payloadStart, end) }, connection, bytes);
        if (out.length === 1 && out[0] === bytes) {
          // The message as it came.
          tracker.clientMessage(code, end - payloadStart);
        } else {
          if (offset > sent) this.outbox!.push(piece.subarray(sent, offset));
          for (const rewritten of out) this.throughToServer(rewritten);
          sent = end;
        }
      }
      offset = end;
    }
    if (sent < piece.length) this.outbox!.push(sent === 0 ? piece : piece.subarray(sent));
  }

  /** Bytes the tracker frames itself: CopyData as it streams, messages the mapper made. */
  private throughToServer(bytes: Buffer): void {
    this.tracker!.fromClient(bytes);
    this.outbox!.push(bytes);
  }

  /** Writes what toServer put in the outbox, in one write; false (the client paused) when the server pushes back. */
  private flush(): boolean {
    const outbox = this.outbox;
    if (outbox === undefined || outbox.length === 0) return true;
    const bytes = outbox.length === 1 ? outbox[0]! : joinBytes(outbox);
    // Emptied by pop, which keeps the array's store (`length = 0` drops it, and the next push makes a new one).
    while (outbox.length > 0) outbox.pop();
    const flowing = this.upstream().write(bytes);
    if (!flowing) this.client.pause();
    return flowing;
  }

  private malformed(error: unknown): void {
    this.end(`client sent a malformed message: ${errorMessage(error)}`, encodeErrorResponse({ severity: 'FATAL', code: '08P01', message: `invalid frontend message: ${errorMessage(error)}` }));
  }

  private pin(reason: PinReason): void {
    if (this.pinned) return;
    this.pinned = true;
    this.host.pin(reason);
  }
}
