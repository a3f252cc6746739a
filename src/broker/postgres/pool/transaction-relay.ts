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
import { clientHold, type RelayHold, type RelayTap } from '../../relay.js';
import { encodeMessage, type Frame } from '../codec/frames.js';
import { FrontendCode, decodeParse, decodeQuery, encodeErrorResponse } from '../codec/messages.js';
import { ClientStream, type ClientPiece } from './client-stream.js';
import { MAPPER_REPLIES, type StatementMapping } from './statement-mapper.js';
import { joinBytes } from './join-bytes.js';
import type { Lease } from '../../pool/pool-manager.js';
import { sqlSessionEffects, type PinReason } from './pin-scanner.js';
import type { ServerConnection, ServerReader } from './server-connection.js';
import { ReplyFilter } from './reply-filter.js';
import { SERVER_TRACKED, SessionTracker } from './session-tracker.js';

export interface TransactionRelayOptions {
  client: Socket;
  /** Client bytes read past the login. */
  early: Buffer;
  tap?: RelayTap;
  /** Under `broker.audit.on_failure: block`: the client is not read while the audit waits (see relay()). */
  hold?: RelayHold;
  /** A server connection with the client's parameters; rejects with the ErrorResponse to send the client. */
  attach(signal: AbortSignal): Promise<Lease<ServerConnection>>;
  /** Back to the pool between transactions (nothing to reset). */
  releaseIdle(lease: Lease<ServerConnection>): void;
  /** Back to the pool when the session ends while attached: reset (tracker) or discarded (undefined). */
  releaseEnd(lease: Lease<ServerConnection>, tracker: SessionTracker | undefined): Promise<void>;
  pin(reason: PinReason): void;
  /** Named prepared statements mapped onto each connection; absent: a named Parse pins. */
  statements?: StatementMapping;
  /** The connection attached now, for cancel requests. */
  onAttached?(connection: ServerConnection | undefined): void;
  /** End the client at its next transaction boundary once its token has expired. */
  expiry?: PooledExpiry;
}

export class AttachRefused extends Error {
  constructor(readonly reply: Buffer) {
    super('no server connection for the client');
  }
}

/** The server messages the relay reads (the tracker's, the mapper's, ErrorResponse); the rest pass unread. */
const READ_WITHOUT_MAPPER: ReadonlySet<number> = new Set([...SERVER_TRACKED, 0x45 /* E */]);
const READ_WITH_MAPPER: ReadonlySet<number> = new Set([...READ_WITHOUT_MAPPER, ...MAPPER_REPLIES]);

const serverGone = (): Buffer =>
  encodeErrorResponse({ severity: 'FATAL', code: '08006', message: 'the server connection closed during the transaction', hint: 'The session has ended; connect again (the next session gets a new server connection).' });

export function transactionRelay(options: TransactionRelayOptions): Promise<{ error?: string }> {
  const { client } = options;
  return new Promise((resolve) => {
    const clientStream = new ClientStream();
    let lease: Lease<ServerConnection> | undefined;
    // Attached: the tracker and filter of the connection's stream. They are made at the first
    // attach and serve every later one, as a connection is only handed back with both streams at
    // a message boundary (idleStatus), where they are as new.
    let tracker: SessionTracker | undefined;
    let replies: ReplyFilter | undefined;
    let reusable: { tracker: SessionTracker; replies: ReplyFilter } | undefined;
    let attaching = false;
    /** Ends the client's wait for a connection when it goes; one for all its transactions. */
    let gone: AbortController | undefined;
    const pending: ClientPiece[] = [];
    /** Messages for the attached connection, written once per client chunk. */
    const outbox: Buffer[] = [];
    let pinned = false;
    let done = false;

    const upstream = (): Socket => lease!.connection.socket;
    const end = (error?: string, last?: Buffer): void => {
      if (done) return;
      done = true;
      client.off('data', fromClient);
      client.off('drain', resumeServer);
      gone?.abort(new Error('the client went away'));
      const held = lease;
      const heldTracker = tracker;
      const broken = held ? held.connection.broken || held.connection.socket.destroyed : false;
      detach();
      if (last && !client.destroyed) client.end(last);
      else client.destroy();
      const finish = (): void => resolve(error ? { error } : {});
      if (held) void options.releaseEnd(held, broken ? undefined : heldTracker).finally(finish);
      else finish();
    };

    /** Stops relaying the attached connection; the caller hands it back. */
    function detach(): void {
      if (!lease) return;
      // Not paused: the pool's idle watch, or the reset's query, reads it next, in this same turn.
      const connection = lease.connection;
      if (connection.reader === reader) connection.reader = undefined;
      lease = undefined;
      tracker = undefined;
      replies = undefined;
      options.onAttached?.(undefined);
    }

    const audit = clientHold(client, options.hold, () => !done && !attaching && !(lease && upstream().writableNeedDrain));
    const resumeClient = (): void => {
      if (!attaching && !audit.held) client.resume();
    };
    const resumeServer = (): void => {
      if (lease) upstream().resume();
    };
    // The client has the server's FATAL already when it sent one.
    const serverError = (e: Error): void => end(`upstream: ${e.message}`, replies?.fatal ? undefined : serverGone());
    const serverClosed = (): void => end('the server connection closed', replies?.fatal ? undefined : serverGone());
    /** What the attached connection's socket tells (ServerConnection.reader): one object for every attach. */
    const reader: ServerReader = {
      data: (chunk) => fromServer(chunk),
      drain: resumeClient,
      gone: (error) => (error ? serverError(error) : serverClosed()),
    };

    function fromServer(chunk: Buffer): void {
      if (!lease || !tracker || !replies) return;
      let out: Buffer[];
      try {
        tracker.serverBytes(chunk.length);
        out = replies.push(chunk);
        tracker.serverFramedTo(replies.framedBytes);
      } catch (error) {
        // Never reused: the pool cannot tell where the server's stream stands.
        lease.connection.broken = true;
        end(`upstream broke the protocol: ${errorMessage(error)}`, serverGone());
        return;
      }
      // One write (one syscall) however many pieces the filter cut the chunk into.
      if (out.length > 0 && !client.write(out.length === 1 ? out[0]! : joinBytes(out))) upstream().pause();
      if (!pinned && tracker.idleStatus() === 'I') {
        const held = lease;
        detach();
        options.releaseIdle(held);
      }
      cutIfExpired();
    }

    /** At a transaction boundary (no connection, or a pinned one idle outside a transaction) once the token expired. */
    function cutIfExpired(): void {
      const expiry = options.expiry;
      if (done || !expiry?.due || attaching || pending.length > 0) return;
      if (lease && tracker?.idleStatus() !== 'I') return;
      end(undefined, expiry.cut());
    }
    options.expiry?.whenExpired(cutIfExpired);

    const filter = options.tap?.((message) => end(message));
    function fromClient(chunk: Buffer): void {
      const audited = filter ? filter(chunk) : chunk;
      if (done) return;
      try {
        for (const part of Buffer.isBuffer(audited) ? [audited] : audited) {
          for (const piece of clientStream.push(part)) {
            if (piece.frame?.code === FrontendCode.Terminate) {
              if (lease && !attaching) flush();
              end();
              return;
            }
            // A piece is a view of a chunk the socket allocated for this read (or of its own
            // buffer when it spanned chunks): nothing reuses it, so one that waits is not copied.
            if (lease && !attaching) toServer(piece);
            else pending.push(piece);
          }
        }
      } catch (error) {
        malformed(error);
        return;
      }
      if (lease && !attaching) flush();
      else if (pending.length > 0 && !attaching) void attach();
      if (filter && !done) audit.after();
    }

    async function attach(): Promise<void> {
      attaching = true;
      gone ??= new AbortController();
      client.pause();
      let got: Lease<ServerConnection>;
      try {
        got = await options.attach(gone.signal);
      } catch (error) {
        attaching = false;
        if (error instanceof AttachRefused) end('no server connection for the client', error.reply);
        else end(errorMessage(error));
        return;
      }
      if (done) {
        options.releaseIdle(got);
        return;
      }
      lease = got;
      if (reusable) reusable.tracker.parameters = got.connection.parameters;
      else {
        const statements = options.statements;
        const made = new SessionTracker(got.connection.parameters);
        const replyFilter = new ReplyFilter((frame) => {
          if (SERVER_TRACKED.has(frame.code)) made.serverMessage(frame);
          return statements ? statements.fromServer(frame) : true;
        }, statements ? READ_WITH_MAPPER : READ_WITHOUT_MAPPER);
        reusable = { tracker: made, replies: replyFilter };
      }
      ({ tracker, replies } = reusable);
      const socket = got.connection.socket;
      got.connection.reader = reader;
      // Set at the TLS handshake (upstream-connect.ts) already: Node skips the syscall when it is unchanged.
      socket.setNoDelay(true);
      options.onAttached?.(got.connection);
      if (got.connection.broken || socket.destroyed) {
        end('the server connection closed', serverGone());
        return;
      }
      if (socket.isPaused()) socket.resume();
      try {
        for (const frame of pending.splice(0)) toServer(frame);
      } catch (error) {
        malformed(error);
        return;
      }
      attaching = false;
      if (flush() && !audit.held) client.resume();
    }

    /** Scans and maps one client message for the attached connection, into the outbox; CopyData bytes go as they are. */
    function toServer(piece: ClientPiece): void {
      if (piece.through) {
        throughToServer(piece.through);
        return;
      }
      const frame = piece.frame;
      const connection = lease!.connection;
      if (frame.code === FrontendCode.Query || frame.code === FrontendCode.Parse) {
        const parse = frame.code === FrontendCode.Parse ? decodeParse(frame.payload) : undefined;
        const effects = sqlSessionEffects(parse ? parse.query : decodeQuery(frame.payload));
        for (const reason of effects.pins) pin(reason);
        if (effects.resetsSession) {
          connection.settings.clear();
          connection.prepared.clear();
        }
        if (parse && !options.statements && parse.statement !== '') pin('prepared_statement');
      }
      const out = options.statements ? options.statements.toServer(frame, connection, piece.bytes) : [piece.bytes ?? encodeMessage(frame.code, frame.payload)];
      if (piece.bytes !== undefined && out.length === 1 && out[0] === piece.bytes) {
        // The message as it came: the tracker has its frame already.
        tracker!.clientMessage(frame.code, frame.length);
        outbox.push(piece.bytes);
        return;
      }
      for (const bytes of out) throughToServer(bytes);
    }

    /** Bytes the tracker frames itself: CopyData as it streams, messages the mapper made. */
    function throughToServer(bytes: Buffer): void {
      tracker!.fromClient(bytes);
      outbox.push(bytes);
    }

    /** Writes what toServer put in the outbox, in one write; false (the client paused) when the server pushes back. */
    function flush(): boolean {
      if (outbox.length === 0) return true;
      const bytes = outbox.length === 1 ? outbox[0]! : joinBytes(outbox);
      outbox.length = 0;
      const flowing = upstream().write(bytes);
      if (!flowing) client.pause();
      return flowing;
    }

    function malformed(error: unknown): void {
      end(`client sent a malformed message: ${errorMessage(error)}`, encodeErrorResponse({ severity: 'FATAL', code: '08P01', message: `invalid frontend message: ${errorMessage(error)}` }));
    }

    function pin(reason: PinReason): void {
      if (pinned) return;
      pinned = true;
      options.pin(reason);
    }

    client.on('error', (e) => end(`client: ${e.message}`));
    client.on('close', () => end());
    client.on('end', () => end());
    client.on('drain', resumeServer);
    client.on('data', fromClient);
    if (client.destroyed) {
      end();
      return;
    }
    if (options.early.length > 0) fromClient(options.early);
    if (!audit.held) client.resume();
  });
}
