/**
 * One PostgreSQL client connection through the broker, as an explicit sequence of steps:
 *
 *   AwaitingStartup → (TLS) → Authenticating (tunnel password, SCRAM) → Authorizing (roles)
 *   → ConnectingUpstream (token, TLS, login) → Relaying → Closed
 *
 * Every failure before Relaying reaches the client as an ErrorResponse with a SQLSTATE and a
 * message that says what to do; the broker and its other sessions are unaffected. Once relaying,
 * bytes are piped with backpressure; when queries are audited the client→server stream is
 * scanned on the side, never copied into the forwarding path. With a pool, ConnectingUpstream
 * takes a server connection from it instead and Relaying hands it back (relayPooled: at the end
 * in session mode, after each transaction in transaction mode); without one nothing of the pool
 * is on the path.
 */
import type { Socket } from 'node:net';
import { errorMessage, redactSecrets } from '../../errors.js';
import type { SessionIdentity } from '../audit.js';
import { clientAddress, newSessionId, sessionRecord, type SessionOptions, type SessionRecord } from '../session-record.js';
import { MAX_TOKEN_LOGIN_MESSAGE, awaitStartup, clientConnection, type ClientConnection } from './startup-phase.js';
import { loginWait } from '../login-wait.js';
import { hangUp, relay, type RelayHold, type RelayTap } from '../relay.js';
import { sourceKey } from '../login-backoff.js';
import { afterWrongPassword, loginRefusal } from '../login-guard.js';
import type { Cancellable, CancelRegistry } from '../cancel-registry.js';
import { upstreamLoginUser, type UpstreamTarget } from '../target.js';
import { UpstreamError, openTcp, startTls } from '../upstream-connect.js';
import { HandshakeTimeoutError, PeerClosedError, WireReader } from '../wire-reader.js';
import { FrameDecoder } from './codec/frame-decoder.js';
import {
  FrontendCode,
  decodePasswordMessage,
  decodeSaslInitialResponse,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeProtocol2Error,
  encodeReadyForQuery,
  type ErrorFields,
} from './codec/messages.js';
import { PgProtocolError, PgStartupRefusal } from './codec/protocol-error.js';
import { queryAudit } from './query-audit.js';
import { SCRAM_MECHANISM, ScramServer } from './scram.js';
import { encodeCancelRequest, encodeSslRequest } from './codec/startup.js';
import { PgUpstreamRefused, loginUpstream, type UpstreamSession } from './upstream.js';
import { PoolClosed, PoolWaitTimeout, type Lease } from '../pool/pool-manager.js';
import type { LeaseReceiver, PoolLogin, PoolMember, PostgresPool } from './pool/postgres-pool.js';
import { pooledRelay } from '../pool/pooled-relay.js';
import { describeRefusal, isBlameless, refusalFor, upstreamTokenGetter, type SignedIn } from '../client-entra.js';
import type { SignedInRecord } from '../session-record.js';
import { loopbackPeerUser } from '../peer-user.js';
import { EXPIRED_MESSAGE, pooledExpiry, watchExpiry, type PooledExpiry } from '../expiry-watch.js';
import { POSTGRES_FAREWELL, postgresBoundary } from './transaction-boundary.js';
import type { ServerConnection } from './pool/server-connection.js';
import { SessionTracker } from './pool/session-tracker.js';
import { AttachRefused, transactionRelay, type AttachReceiver, type TransactionRelayHost } from './pool/transaction-relay.js';
import type { PinReason } from './pool/pin-scanner.js';

/**
 * Clients prove the local password with SCRAM-SHA-256; with clientTls SSLRequest is answered 'S'.
 * handshakeTimeoutMs @default 60_000 (PostgreSQL's authentication_timeout).
 */
export interface PostgresSessionOptions extends SessionOptions {
  cancels: CancelRegistry;
  /** Server connections shared by clients (session or transaction mode); absent: one upstream per client. */
  pool?: PostgresPool;
}

/** An error for the client, already phrased for it. */
class PgClientError extends Error {
  constructor(readonly fields: ErrorFields, readonly frame?: Buffer) {
    super(fields.message);
  }
}

const fatal = (code: string, message: string, hint?: string): PgClientError =>
  new PgClientError({ severity: 'FATAL', code, message, ...(hint ? { hint } : {}) });

/** invalid_password: also what the login backoff counts. */
const WRONG_PASSWORD = '28P01';

const tooManyFailures = (address: string | undefined, retryIn: number): PgClientError =>
  fatal(
    '28000',
    `too many failed logins from ${sourceKey(address)}; try again in ${retryIn} s`,
    'Wrong passwords from one address are answered ever more slowly; use the password azdb gave for this listener or tunnel.',
  );

export async function runPostgresSession(clientSocket: Socket, options: PostgresSessionOptions): Promise<void> {
  const id = newSessionId();
  const started = Date.now();
  const record = sessionRecord(id, clientSocket, options.audit, options.onEvent, started);
  const handshakeMs = options.handshakeTimeoutMs ?? 60_000;
  const deadline = { at: started + handshakeMs, what: 'the client to log in' };
  const client = clientConnection(clientSocket, options.entra ? MAX_TOKEN_LOGIN_MESSAGE : undefined);
  let identity: SessionIdentity | undefined;
  try {
    // AwaitingStartup
    const first = await awaitStartup(client, options.clientTls, deadline);
    const { socket, reader } = client;
    if (first.type === 'cancel') {
      const forwarded = await options.cancels.cancel(first.processId, first.secretKey).catch(() => false);
      options.onEvent?.({ type: 'cancel', forwarded });
      socket.end();
      return;
    }
    const startup = first;
    if (options.requireClientTls && !client.encrypted) {
      throw fatal('28000', 'this azdb listener accepts TLS connections only', 'Connect with sslmode=require (better: verify-full with the CA of the listener certificate).');
    }
    const retryIn = loginRefusal(options, clientSocket.remoteAddress);
    if (retryIn !== undefined) {
      // Unchecked and unaudited: a source hammering the listener must not flood the audit.
      reader.detach();
      await hangUp(socket, encodeErrorResponse(tooManyFailures(clientSocket.remoteAddress, retryIn).fields));
      return;
    }
    const unsupported = Object.keys(startup.params).filter((name) => name.startsWith('_pq_.'));
    if (startup.minor > 0 || unsupported.length > 0) socket.write(encodeNegotiateProtocolVersion(0, unsupported));

    const dbUser = startup.params.user || options.defaults.dbUser || '';
    const dbName = startup.params.database || options.defaults.dbName || dbUser;
    identity = {
      session_id: id,
      database: options.target.name,
      protocol: 'postgres',
      db_user: dbUser,
      db_name: dbName,
      client_address: clientAddress(clientSocket),
    };

    // Authenticating: the tunnel's local password (never forwarded anywhere), or the person's Entra token.
    const signingIn = options.entra
      ? signInWithEntra(socket, reader, options, dbUser, deadline)
      : authenticateClient(socket, reader, options.localPassword, dbUser, deadline).then(() => undefined);
    const signedIn = await signingIn.catch(async (error: unknown) => {
      if (error instanceof PgClientError && error.fields.code === WRONG_PASSWORD && !isBlameless(error)) await afterWrongPassword(options, clientSocket.remoteAddress, socket, deadline);
      throw error;
    });
    options.logins?.succeeded(clientSocket.remoteAddress);

    // Authorizing
    const decision = options.authorize(dbUser, dbName, signedIn?.person);
    if (!decision.allowed) {
      throw fatal(
        '28000',
        `access to database "${dbName}" as user "${dbUser}" on ${options.target.name} is denied by your azdb roles: ${decision.reason}`,
        'Run `azdb db ls` to see the database users and names your roles allow.',
      );
    }

    // Under `broker.audit.on_failure: block` a full audit queue holds new sessions here; a client
    // that gave up (or a shutdown that cut it) meanwhile gets no server connection.
    await options.audit.wait();
    if (socket.destroyed) throw new PeerClosedError();

    const upstreamOptions = upstreamTokenGetter(options, options.entra, signedIn);
    // The client's OS user (read from /proc) is wanted only for the session's record: it is read while the upstream login runs.
    const signedInRecord = signedIn ? withOsUser({ person: signedIn.person, decision }, loopbackPeerUser(clientSocket)) : undefined;
    if (options.pool) {
      const relaying = await relayPooled(upstreamOptions, options.pool, client, startup.params, { identity, dbUser, dbName, record, ...(signedInRecord ? { signedIn: signedInRecord } : {}) }, () => loginWait(deadline, handshakeMs, options.closing));
      // Returned, not awaited: this function's frame (and the login's locals in it) ends here, while
      // the relay goes on in callbacks. An idle pooled client keeps no suspended function, and no
      // closure over this function's context (`done` refuses its own failures, never rejects).
      return relaying.done;
    }

    // ConnectingUpstream, within the client's login deadline
    const wait = loginWait(deadline, handshakeMs, options.closing);
    const [{ token, upstream }, who] = await Promise.all([connectUpstream(upstreamOptions, startup.params, dbUser, dbName, wait.signal).finally(() => wait.dispose()), signedInRecord]);

    // Relaying
    const key = upstream.backendKey;
    const minted = key ? options.cancels.mint({ cancel: () => forwardCancel(options.target, key) }, key.processId) : undefined;
    try {
      const greeting = upstream.greeting;
      const ready = greeting.pop()!;
      const early = reader.detach();
      socket.write(Buffer.concat([...greeting, ...(minted ? [encodeBackendKeyData(minted.processId, minted.secretKey)] : []), ready]));
      if (upstream.rest.length > 0) socket.write(upstream.rest);
      // This function stays parked in `relay` for the whole session, holding its locals: let the
      // login's messages (views into the chunks they were read in) go now.
      greeting.length = 0;
      upstream.rest = Buffer.alloc(0);
      record.started(identity, dbUser, dbName, token, who);
      const relaying = options.audit.queries
        ? relay(socket, upstream.socket, early, queryAudit(options.audit, identity), () => options.audit.wait())
        : relay(socket, upstream.socket, early);
      // After the relay's pipe: the watch sees each server chunk once the client has been sent it.
      const expiry =
        signedIn && options.entra?.disconnectExpired
          ? watchExpiry(socket, upstream.socket, signedIn.person.expiresAt, postgresBoundary(early), POSTGRES_FAREWELL, () => options.onEvent?.({ type: 'expired-disconnect' }))
          : undefined;
      const result = await relaying;
      expiry?.stop();
      const error = expiry?.fired ? EXPIRED_MESSAGE : result.error;
      record.ended(identity, error ? 'error' : 'ok', error);
    } finally {
      if (minted) options.cancels.release(minted.processId);
    }
  } catch (error) {
    await refuseClient(error, client.socket, client.reader, record, identity);
  }
}

/**
 * A session that failed: recorded, and the client told why (when it is still there and there is
 * something to say). `reader`: the login's, while it still reads the socket.
 */
async function refuseClient(error: unknown, socket: Socket, reader: WireReader<FrameDecoder> | undefined, record: SessionRecord, identity: SessionIdentity | undefined): Promise<void> {
  const clientError = toClientError(error);
  const message = clientError?.fields.message ?? errorMessage(error);
  record.rejected(identity, message);
  if (clientError && !socket.destroyed) {
    reader?.detach();
    await hangUp(socket, clientError.frame ?? encodeErrorResponse(clientError.fields));
  }
}

async function withOsUser(signedIn: SignedInRecord, osUser: Promise<string | undefined>): Promise<SignedInRecord> {
  const user = await osUser;
  return user ? { ...signedIn, osUser: user } : signedIn;
}

/** The token, then the server's login as the mapped user; `signal` ends the wait for either. */
async function connectUpstream(
  options: PostgresSessionOptions,
  params: Record<string, string>,
  dbUser: string,
  dbName: string,
  signal: AbortSignal,
): Promise<{ token: string; upstream: UpstreamSession }> {
  const token = await tokenFor(options, signal);
  const loginUser = upstreamLoginUser(options.target, dbUser);
  const passthrough = passthroughParams(params);
  const upstream = await loginUpstream(options.target, { user: loginUser, database: dbName, params: passthrough }, token, signal).catch((error: unknown) => {
    throw upstreamFailure(error, options.target, loginUser, dbName);
  });
  return { token, upstream };
}

async function tokenFor(options: PostgresSessionOptions, signal: AbortSignal): Promise<string> {
  try {
    return await options.getToken(signal);
  } catch (error) {
    throw fatal('08001', `azdb could not get an Entra token for ${options.target.name}: ${errorMessage(error)}`, 'Run `azdb creds` to see which credential source works and how to fix the others.');
  }
}

/** The client's startup parameters that go on to the server (application_name, client_encoding, options…). */
function passthroughParams(params: Record<string, string>): Record<string, string> {
  const passthrough: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    if (name !== 'user' && name !== 'database' && !name.startsWith('_pq_.')) passthrough[name] = value;
  }
  return passthrough;
}

/**
 * Relaying through the pool. The connection is the key's (same user, database and identity); the
 * client's startup parameters are applied on it (applySettings) and the client is greeted with
 * the connection's ParameterStatus set and a BackendKeyData of its own. Session mode keeps that
 * connection for the whole session and then hands it back for reset (relayPooled's pooledRelay);
 * transaction mode hands it back at once and lends one per transaction (transactionRelay).
 * Resolves once the client is greeted and relaying, with `done`, which resolves when the session
 * ends (a failure at its end refused as refuseClient does: it never rejects).
 */
async function relayPooled(
  options: PostgresSessionOptions,
  pool: PostgresPool,
  client: ClientConnection,
  params: Record<string, string>,
  who: { identity: SessionIdentity; dbUser: string; dbName: string; record: ReturnType<typeof sessionRecord>; signedIn?: Promise<SignedInRecord> },
  startWait: () => ReturnType<typeof loginWait>,
): Promise<{ done: Promise<void> }> {
  const { socket, reader } = client;
  const loginUser = upstreamLoginUser(options.target, who.dbUser);
  const { options: startupOptions, ...settings } = passthroughParams(params);
  const transactionMode = pool.mode === 'transaction';
  const { token, member, lease, greetWith } = await joinPool(options, pool, socket, { loginUser, dbName: who.dbName, ...(startupOptions ? { options: startupOptions } : {}) }, settings, startWait);
  const signedIn = await who.signedIn;
  const connection = lease?.connection;
  // Session mode: the client's stream on its connection, for the reset at the end.
  const tracker = connection && !transactionMode ? new SessionTracker(connection.parameters) : undefined;
  // Transaction mode: a connection taken at login gave the greeting its parameters; transactions take their own.
  const greetParams = greetWith ?? (transactionMode ? new Map(connection!.parameters) : connection!.parameters);
  if (transactionMode && lease) pool.releaseIdle(lease);
  let serverBroken = false;
  let minted: { processId: number; secretKey: Buffer } | undefined;
  // Transaction mode: the client's session object, which its relay and cancel key call back.
  const session = transactionMode ? new TransactionModeClient(options, pool, member, settings, loginUser, who.identity, who.record) : undefined;
  /** When the session ends (or fails to start): its cancel key, its membership and, in session mode, its connection go back. */
  const finish = async (): Promise<void> => {
    if (minted) options.cancels.release(minted.processId);
    member.leave();
    if (!transactionMode) await pool.release(lease!, serverBroken ? undefined : tracker, serverBroken);
  };
  try {
    if (session) {
      minted = session.mintCancelKey();
    } else {
      const key = connection!.backendKey;
      minted = key ? options.cancels.mint({ cancel: () => forwardCancel(options.target, key) }, key.processId) : undefined;
    }
    const early = loginRest(reader.detach());
    socket.write(pooledGreeting(greetParams, minted));
    who.record.started(who.identity, who.dbUser, who.dbName, token, signedIn);
    const tap = options.audit.queries ? queryAudit(options.audit, who.identity) : undefined;
    const hold = tap ? () => options.audit.wait() : undefined;
    const expiry =
      signedIn && options.entra?.disconnectExpired
        ? pooledExpiry(signedIn.person.expiresAt, POSTGRES_FAREWELL.client, () => options.onEvent?.({ type: 'expired-disconnect' }))
        : undefined;
    if (session) {
      session.relay(socket, early, { ...(tap ? { tap, hold } : {}), ...(expiry ? { expiry } : {}) });
      return { done: session.done };
    }
    const ended = (error: string | undefined): void => {
      expiry?.stop();
      const why = expiry?.fired ? EXPIRED_MESSAGE : error;
      who.record.ended(who.identity, why ? 'error' : 'ok', why);
    };
    const sessionTracker = tracker!;
    const relaying = pooledRelay(socket, connection!, sessionTracker, {
      early,
      ...(tap ? { tap, hold } : {}),
      ...(expiry ? { expiry } : {}),
      atRest: () => sessionTracker.idleStatus() === 'I',
      malformed: (message) => encodeErrorResponse({ severity: 'FATAL', code: '08P01', message: `invalid frontend message: ${message}` }),
    }).done;
    return {
      done: relaying
        .then((result) => {
          serverBroken = result.serverBroken;
          ended(result.error);
        })
        .finally(finish)
        .catch((error: unknown) => refuseClient(error, socket, undefined, who.record, who.identity)),
    };
  } catch (error) {
    await finish();
    throw error;
  }
}

/**
 * A transaction-mode client for its whole session: what its relay asks of the pool, where its
 * cancel goes, and its end. One object with methods, not closures over relayPooled's locals: an
 * idle pooled client keeps this, its relay and its socket (docs/performance.md).
 */
class TransactionModeClient implements TransactionRelayHost, LeaseReceiver, Cancellable {
  /** Settles when the session has ended and its cancel key and membership went back. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  /** The connection the client has now, if any: where its cancel goes. */
  private connection: ServerConnection | undefined;
  private processId = 0;
  private expiry: PooledExpiry | undefined;
  private socket: Socket | undefined;
  /** The relay, told when a transaction's connection is granted or refused. */
  private receiver: AttachReceiver | undefined;
  private signal: AbortSignal | undefined;

  constructor(
    private readonly options: PostgresSessionOptions,
    private readonly pool: PostgresPool,
    private readonly member: PoolMember,
    private readonly settings: Record<string, string>,
    private readonly loginUser: string,
    private readonly identity: SessionIdentity,
    private readonly record: SessionRecord,
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /** The client's cancel key, which cancels on the connection it has at the time. */
  mintCancelKey(): { processId: number; secretKey: Buffer } {
    const minted = this.options.cancels.mint(this);
    this.processId = minted.processId;
    return minted;
  }

  relay(socket: Socket, early: Buffer, extra: { tap?: RelayTap; hold?: RelayHold; expiry?: PooledExpiry }): void {
    this.socket = socket;
    this.expiry = extra.expiry;
    transactionRelay({ client: socket, early, host: this, maxPreparedStatements: this.pool.maxPreparedStatements, ...extra });
  }

  attach(signal: AbortSignal, receiver: AttachReceiver): void {
    this.receiver = receiver;
    this.signal = signal;
    this.member.requestForTransaction(this.settings, signal, this);
  }

  // LeaseReceiver: the member's answer, passed on to the relay.
  granted(lease: Lease<ServerConnection>): void {
    this.receiver!.attachGranted(lease);
  }

  refused(error: unknown): void {
    const refused = refusedAcquire(error, this.options, this.pool, this.loginUser, this.identity.db_name, this.signal!);
    this.receiver!.attachRefused(refused instanceof PgClientError ? new AttachRefused(encodeErrorResponse(refused.fields)) : refused);
  }

  releaseIdle(lease: Lease<ServerConnection>): void {
    this.pool.releaseIdle(lease);
  }

  releaseEnd(lease: Lease<ServerConnection>, tracker: SessionTracker | undefined): Promise<void> {
    return this.pool.release(lease, tracker, tracker === undefined);
  }

  pin(reason: PinReason): void {
    this.member.pin(reason);
  }

  attached(connection: ServerConnection | undefined): void {
    this.connection = connection;
  }

  cancel(): Promise<void> {
    const key = this.connection?.backendKey;
    return key ? forwardCancel(this.options.target, key) : Promise.resolve();
  }

  ended(error: string | undefined): void {
    this.expiry?.stop();
    const why = this.expiry?.fired ? EXPIRED_MESSAGE : error;
    try {
      this.record.ended(this.identity, why ? 'error' : 'ok', why);
    } catch (failure) {
      void refuseClient(failure, this.socket!, undefined, this.record, this.identity);
    } finally {
      if (this.processId > 0) this.options.cancels.release(this.processId);
      this.member.leave();
      this.resolveDone();
    }
  }
}

/**
 * A pooled client's greeting, in one buffer. Its messages are slices of Node's shared 8 KiB buffer
 * pool: none of them may stay with the session (a suspended function or a closure's context), or
 * each would keep a whole slab alive.
 */
function pooledGreeting(parameters: Iterable<[string, string]>, minted: { processId: number; secretKey: Buffer } | undefined): Buffer {
  const greeting = [encodeAuthentication({ type: 'ok' })];
  for (const [name, value] of parameters) greeting.push(encodeParameterStatus(name, value));
  if (minted) greeting.push(encodeBackendKeyData(minted.processId, minted.secretKey));
  greeting.push(encodeReadyForQuery('I'));
  return Buffer.concat(greeting);
}

const NOTHING_EARLY = Buffer.alloc(0);

/** The client's bytes read past its login; when none, not an empty view that keeps the login's last chunk alive for the session. */
function loginRest(rest: Buffer): Buffer {
  return rest.length > 0 ? rest : NOTHING_EARLY;
}

/**
 * The client's membership of the pool and what to greet it with, within its login deadline: a
 * server connection of its key, or in transaction mode, when its key's connections reported them
 * for the same settings before, their parameters (the login then does not wait for a busy pool).
 * Its own function so that what the wait needed (signals, timer) is not kept for the session.
 */
async function joinPool(
  options: PostgresSessionOptions,
  pool: PostgresPool,
  socket: Socket,
  login: PoolLogin,
  settings: Record<string, string>,
  startWait: () => ReturnType<typeof loginWait>,
): Promise<{ token: string; member: PoolMember; lease?: Lease<ServerConnection>; greetWith?: Map<string, string> }> {
  const wait = startWait();
  // A client that hangs up while it waits for a busy pool leaves the queue at once.
  let hangUp: PeerClosedError | undefined;
  const hungUp = (): void => wait.abort((hangUp = new PeerClosedError()));
  socket.once('close', hungUp);
  const signal = wait.signal;
  let member: PoolMember | undefined;
  try {
    const token = await tokenFor(options, signal);
    member = pool.join(login, token);
    const greetWith = pool.mode === 'transaction' ? member.knownGreeting(settings) : undefined;
    if (greetWith) return { token, member, greetWith };
    const lease = await acquirePooled(options, pool, member, settings, login.loginUser, login.dbName, signal).catch((error: unknown) => {
      throw hangUp ?? error;
    });
    return { token, member, lease };
  } catch (error) {
    member?.leave();
    throw error;
  } finally {
    wait.dispose();
    socket.off('close', hungUp);
  }
}

/** A server connection of the client's key with its parameters applied, or the error for the client. */
function acquirePooled(
  options: PostgresSessionOptions,
  pool: PostgresPool,
  member: PoolMember,
  settings: Record<string, string>,
  loginUser: string,
  dbName: string,
  signal: AbortSignal,
): Promise<Lease<ServerConnection>> {
  return member.acquire(settings, signal).catch((error: unknown) => {
    throw refusedAcquire(error, options, pool, loginUser, dbName, signal);
  });
}

/** What a client is told when no connection is had: a PgClientError, or the error as it came. */
function refusedAcquire(error: unknown, options: PostgresSessionOptions, pool: PostgresPool, loginUser: string, dbName: string, signal: AbortSignal): unknown {
  if (error instanceof PoolWaitTimeout) {
    return fatal(
      '53300',
      `all ${pool.limits.maxServerConnections} pooled server connections for user "${loginUser}" on ${options.target.name} are busy; waited ${(error.waitedMs / 1000).toFixed(1)} s`,
      'Raise pool.max_server_connections (or pool.max_client_wait) in azdb.yaml, or have clients hold their connections for shorter.',
    );
  }
  if (error instanceof PoolClosed) return fatal('57P01', `the azdb listener for ${options.target.name} is shutting down`);
  if (signal.aborted) return signal.reason;
  return upstreamFailure(error, options.target, loginUser, dbName);
}

async function authenticateClient(
  socket: Socket,
  reader: WireReader<FrameDecoder>,
  password: string,
  dbUser: string,
  deadline: { at: number; what: string },
): Promise<void> {
  const next = async (what: string) => {
    const frame = await reader.read((decoder) => decoder.next(), deadline);
    if (frame.code !== FrontendCode.Password) throw fatal('08P01', `expected ${what}, got message type ${frame.code}`);
    return frame.payload;
  };
  const wrong = () =>
    fatal(WRONG_PASSWORD, `password authentication failed for user "${dbUser}"`, 'Use the password azdb gave for this tunnel (`azdb proxy db NAME --json` prints it); it changes with every tunnel.');
  socket.write(encodeAuthentication({ type: 'sasl', mechanisms: [SCRAM_MECHANISM] }));
  const initial = decodeSaslInitialResponse(await next('a SASLInitialResponse'));
  if (initial.mechanism !== SCRAM_MECHANISM) throw fatal('28000', `SASL mechanism "${initial.mechanism}" is not supported; use ${SCRAM_MECHANISM}`);
  const scram = new ScramServer(password);
  socket.write(encodeAuthentication({ type: 'sasl-continue', data: scram.first(initial.data) }));
  const result = scram.final(await next('a SASLResponse'));
  if (!result.ok) throw wrong();
  socket.write(encodeAuthentication({ type: 'sasl-final', data: result.serverFinal }));
}

/**
 * `client_auth: entra`: the password is the person's Entra token, asked for in clear text (what
 * Azure itself asks psql for; a listener off loopback has TLS). A refusal is 28P01 with the
 * reason, never the token.
 */
async function signInWithEntra(
  socket: Socket,
  reader: WireReader<FrameDecoder>,
  options: PostgresSessionOptions,
  dbUser: string,
  deadline: { at: number; what: string },
): Promise<SignedIn> {
  socket.write(encodeAuthentication({ type: 'cleartext' }));
  const frame = await reader.read((decoder) => decoder.next(), deadline);
  if (frame.code !== FrontendCode.Password) throw fatal('08P01', `expected a password message, got message type ${frame.code}`);
  const token = decodePasswordMessage(frame.payload);
  const verdict = await options.entra!.validate(token);
  if (!verdict.ok) {
    options.onEvent?.({ type: 'client-auth-refused', reason: verdict.reason });
    const { message, hint } = describeRefusal(verdict.reason, dbUser);
    throw refusalFor(verdict.reason, fatal(WRONG_PASSWORD, message, hint));
  }
  return { person: verdict.person, token };
}

/** CancelRequest to the upstream server over TLS, with the server's real key. */
async function forwardCancel(target: UpstreamTarget, key: { processId: number; secretKey: Buffer }): Promise<void> {
  const tcp = await openTcp(target);
  try {
    tcp.write(encodeSslRequest());
    const reader = new WireReader(tcp, new FrameDecoder());
    const answer = await reader.read((decoder) => decoder.nextByte(), { at: Date.now() + 10_000, what: 'the TLS answer' });
    reader.detach();
    if (answer !== 0x53) throw new UpstreamError(`${target.name} refused TLS for the cancel request`, 'tls');
    const secure = await startTls(tcp, target);
    await new Promise<void>((resolve) => {
      secure.on('close', () => resolve());
      secure.on('error', () => resolve());
      secure.end(encodeCancelRequest(key.processId, key.secretKey));
    });
  } finally {
    tcp.destroy();
  }
}

function upstreamFailure(error: unknown, target: UpstreamTarget, loginUser: string, dbName: string): PgClientError {
  if (error instanceof PgUpstreamRefused) {
    const fields = error.fields;
    const hint =
      fields.C === '28P01' || fields.C === '28000'
        ? `Azure refused the Entra token for "${loginUser}" on ${target.name}: the role must exist for this identity (pgaadauth_create_principal_with_oid) and be allowed "${dbName}". Run \`azdb doctor ${target.name}\`.`
        : undefined;
    return new PgClientError({
      severity: fields.S === 'ERROR' ? 'ERROR' : 'FATAL',
      code: fields.C ?? '08006',
      // Redacted as the MySQL side does: the server's text goes to the client and the audit.
      message: redactSecrets(fields.M ?? 'the server refused the login'),
      ...(fields.D ? { detail: redactSecrets(fields.D) } : {}),
      ...(fields.H ?? hint ? { hint: redactSecrets((fields.H ?? hint)!) } : {}),
    });
  }
  if (error instanceof UpstreamError) {
    const code = error.stage === 'protocol' ? '08P01' : error.stage === 'auth' ? '28000' : '08001';
    return fatal(code, error.message, error.hint);
  }
  if (error instanceof PgProtocolError) return fatal('08P01', `${target.name} broke the protocol: ${error.message}`);
  return fatal('08006', `connection to ${target.name} failed: ${errorMessage(error)}`, `Run \`azdb doctor ${target.name}\`.`);
}

/** What the client is told, if anything; undefined: close without a byte (the session's log still says why). */
function toClientError(error: unknown): PgClientError | undefined {
  if (error instanceof PgClientError) return error;
  if (error instanceof PgStartupRefusal) {
    if (!error.reply) return undefined;
    const refusal = new PgClientError({ severity: 'FATAL', code: error.reply.code, message: error.message, ...(error.reply.detail ? { detail: error.reply.detail } : {}) });
    return error.reply.protocol2 ? new PgClientError(refusal.fields, encodeProtocol2Error('FATAL', error.message)) : refusal;
  }
  if (error instanceof PgProtocolError) return fatal('08P01', `invalid frontend message: ${error.message}`);
  if (error instanceof HandshakeTimeoutError) return fatal('08006', `${error.message}; closing the connection`);
  if (error instanceof PeerClosedError) return undefined;
  return fatal('XX000', `azdb broker error: ${errorMessage(error)}`);
}
