/**
 * Relaying a MySQL client on pooled server connections, after it proved the tunnel password and
 * the roles allowed it. Session mode: a connection of its key (same user, schema, identity and
 * protocol) is taken from the pool, the client gets azdb's own OK, its minted connection id is
 * bound to the connection's server thread (so its KILL QUERY reaches it), and afterwards the pool
 * resets the connection or closes it. Transaction mode: the client gets its OK at once and takes a
 * connection per transaction (transaction-relay.ts); the minted id follows the one it holds.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SessionIdentity } from '../../audit.js';
import type { loginWait } from '../../login-wait.js';
import type { sessionRecord, SessionOptions, SignedInRecord } from '../../session-record.js';
import { EXPIRED_MESSAGE, pooledExpiry, type PooledExpiry } from '../../expiry-watch.js';
import { MYSQL_FAREWELL } from '../transaction-boundary.js';
import { upstreamLoginUser } from '../../target.js';
import { PoolClosed, PoolWaitTimeout, type Lease } from '../../pool/pool-manager.js';
import type { ChangeUserContext } from '../change-user.js';
import { ServerStatus } from '../codec/constants.js';
import { encodeOk } from '../codec/responses.js';
import { connectionIds } from '../connection-ids.js';
import type { PacketLeg } from '../packet-leg.js';
import { commandGate } from '../session-gate.js';
import { MySqlClientError, clientFailure, tokenUnavailable, upstreamFailure, upstreamRefused } from '../session-errors.js';
import { errorMessage } from '../../../errors.js';
import { MySqlUpstreamRefused, type UpstreamLogin } from '../upstream.js';
import { PeerClosedError } from '../../wire-reader.js';
import { ExchangeTracker } from './exchange-tracker.js';
import type { MySqlPool, MySqlPoolMember } from './mysql-pool.js';
import { pooledRelay, type PooledRelay, type PooledRelayResult } from '../../pool/pooled-relay.js';
import { StatementMapper } from './statement-mapper.js';
import { TransactionRelay, type TransactionRelayHost, type TransactionRelayResult } from './transaction-relay.js';
import type { MySqlServerConnection } from './server-connection.js';
import type { PinReason } from './session-pins.js';
import type { RelayFilter, RelayHold } from '../../relay.js';
import type { HandshakeV10 } from '../codec/handshake.js';

/**
 * Why a transaction-mode client's acquires stop when it left: one error for every session (making
 * one per session, with its stack trace, was a measurable share of a short session's CPU).
 */
const CLIENT_LEFT = new PeerClosedError('the client left');

/** ER_CON_COUNT_ERROR, "Too many connections": what a client expects from a full server. */
const TOO_MANY_CONNECTIONS = 1040;
/** ER_SERVER_SHUTDOWN */
const SERVER_SHUTDOWN = 1053;

interface PooledClient {
  options: SessionOptions;
  pool: MySqlPool;
  client: PacketLeg;
  /** What the client logged in with, as the upstream login would send it (user unmapped). */
  login: Omit<UpstreamLogin, 'user'>;
  dbUser: string;
  identity: SessionIdentity;
  record: ReturnType<typeof sessionRecord>;
  scramble: Buffer;
  connectionId: number;
  wait: ReturnType<typeof loginWait>;
  /** The person signed in with Entra (client_auth: entra), for the audit and disconnect_expired. */
  signedIn?: SignedInRecord;
}

/**
 * Resolves once the client is relaying (transaction mode) or at once (session mode), with `done`,
 * which settles when the session ends: the caller returns it instead of waiting in a suspended
 * frame for as long as the client stays. A failure to start rejects `done` in session mode (the
 * client is then refused, and the caller gives its minted connection id back), the returned
 * promise in transaction mode. `greeted` (transaction mode): the client has its OK, and `done`
 * never rejects and gives the minted connection id back itself.
 */
export async function relayPooled(p: PooledClient): Promise<{ done: Promise<void>; greeted: boolean }> {
  if (p.pool.mode === 'transaction') return relayTransactions(p);
  return { done: relaySession(p), greeted: false };
}

/** Session mode: one server connection of the client's key for its whole session. */
async function relaySession(p: PooledClient): Promise<void> {
  const { options, pool, client } = p;
  const socket = client.socket as Socket;
  const loginUser = upstreamLoginUser(options.target, p.dbUser);
  // A client that hangs up while it waits for a busy pool leaves the queue at once: its login wait
  // ends (not a second signal joined with AbortSignal.any, whose pieces linger until a GC).
  let hangUp: PeerClosedError | undefined;
  const hungUp = (): void => p.wait.abort((hangUp = new PeerClosedError()));
  socket.once('close', hungUp);
  const signal = p.wait.signal;
  let token: string;
  let lease: Lease<MySqlServerConnection>;
  try {
    token = await tokenFor(options, signal);
    lease = await pool.acquire({ ...p.login, user: loginUser }, token, signal).catch((error: unknown) => {
      if (hangUp) throw hangUp;
      throw acquireFailure(pool, loginUser, error);
    });
  } finally {
    p.wait.dispose();
    socket.off('close', hungUp);
  }
  const connection = lease.connection;
  const tracker = new ExchangeTracker(p.login.capabilities);
  let changedUser = false;
  let result: PooledRelayResult = { serverBroken: true };
  const member = pool.join({ ...p.login, user: loginUser }, token);
  try {
    connectionIds.bind(p.connectionId, connection.greeting.connectionId);
    const early = greet(p, token);
    let relay: PooledRelay | undefined;
    const change = changeContext(p, () => connection, async () => {
      // The connection now belongs to another login: it is closed after this client.
      changedUser = true;
      return relay!.hold();
    });
    const expiry = expiryFor(p);
    relay = pooledRelay(socket, connection, tracker, {
      early,
      tap: commandGate(change),
      ...(options.audit.queries ? { hold: () => options.audit.wait() } : {}),
      ...(expiry ? { expiry } : {}),
      atRest: () => tracker.idle && !tracker.inTransaction,
    });
    result = await relay.done;
    endRecord(p.record, p.identity, result.error, expiry);
  } finally {
    member.leave();
    await pool.release(lease, result.serverBroken || changedUser ? undefined : tracker, () => options.getToken());
  }
}

/**
 * Transaction mode: the client is greeted at once, without a server connection; each of its
 * transactions (or commands outside one) takes a connection of its key, see transaction-relay.ts.
 */
async function relayTransactions(p: PooledClient): Promise<{ done: Promise<void>; greeted: true }> {
  let token: string;
  try {
    token = await tokenFor(p.options, p.wait.signal);
  } finally {
    p.wait.dispose();
  }
  const member = p.pool.join({ ...p.login, user: upstreamLoginUser(p.options.target, p.dbUser) }, token);
  const early = greet(p, token);
  // Not awaited here: an idle client keeps no suspended frame of this function.
  return { done: new TransactionSession(p, member, early).done, greeted: true };
}

/**
 * A transaction-mode client from its greeting to its end: the host of its relay and the context
 * of its COM_CHANGE_USER. It keeps what those need of the login, not the login (its packet leg,
 * wait, handshake response), and makes the rest at the client's first command: an idle client
 * that never sent one holds this object, its relay and its pool member.
 */
class TransactionSession implements TransactionRelayHost, ChangeUserContext {
  readonly done: Promise<void>;
  readonly client: Socket;
  readonly capabilities: number;
  readonly options: SessionOptions;
  readonly identity: SessionIdentity;
  readonly expiry: PooledExpiry | undefined;
  private readonly pool: MySqlPool;
  private readonly record: PooledClient['record'];
  private readonly connectionId: number;
  /** azdb's greeting scramble as a string (its bytes are 1–127): a Buffer would keep a pool slab of the login's. */
  private readonly scrambleText: string;
  private readonly relay: TransactionRelay;
  private resolveDone!: (ended: Promise<void>) => void;
  /** Made at the first acquire: aborts it when the client leaves. */
  private leaving: AbortController | undefined;
  private attached: MySqlServerConnection | undefined;
  private statementMapper: StatementMapper | undefined;
  private changedUser = false;

  constructor(
    p: PooledClient,
    private readonly member: MySqlPoolMember,
    early: Buffer,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.client = p.client.socket as Socket;
    this.capabilities = p.login.capabilities;
    this.options = p.options;
    this.identity = p.identity;
    this.expiry = expiryFor(p);
    this.pool = p.pool;
    this.record = p.record;
    this.connectionId = p.connectionId;
    this.scrambleText = p.scramble.toString('latin1');
    this.relay = new TransactionRelay(this.client, this, early);
  }

  // ChangeUserContext: whichever server connection the client holds when the change runs.
  get scramble(): Buffer {
    return Buffer.from(this.scrambleText, 'latin1');
  }

  get upstream(): TLSSocket {
    return this.attached!.socket;
  }

  get upstreamGreeting(): HandshakeV10 {
    return this.attached!.greeting;
  }

  get upstreamCapabilities(): number {
    return this.attached!.capabilities;
  }

  async holdUpstream(): Promise<() => void> {
    this.changedUser = true;
    const connection = await this.relay.attachFor('change-user');
    // COM_CHANGE_USER drops the session's prepared statements on the server.
    this.statementMapper?.forgetAll(connection);
    return this.relay.hold();
  }

  // TransactionRelayHost
  gate(fail: (message: string) => void): RelayFilter {
    return commandGate(this)(fail);
  }

  auditHold(): RelayHold | undefined {
    const audit = this.options.audit;
    return audit.queries ? () => audit.wait() : undefined;
  }

  statements(): StatementMapper | undefined {
    const max = this.pool.maxPreparedStatements;
    return (this.statementMapper = max > 0 ? new StatementMapper(max, this.capabilities) : undefined);
  }

  async acquire(): Promise<Lease<MySqlServerConnection>> {
    const leaving = (this.leaving ??= new AbortController());
    const fresh = await tokenFor(this.options, leaving.signal);
    return this.member.acquire(fresh, leaving.signal).catch((error: unknown) => {
      throw acquireFailure(this.pool, this.member.loginUser, error);
    });
  }

  giveBack(lease: Lease<MySqlServerConnection>): void {
    this.pool.giveBack(lease);
  }

  onAttach(connection: MySqlServerConnection | undefined): void {
    this.attached = connection;
    if (connection) connectionIds.bind(this.connectionId, connection.greeting.connectionId);
    else connectionIds.unbind(this.connectionId);
  }

  onPin(reason: PinReason): void {
    this.member.pin(reason);
  }

  ended(result: TransactionRelayResult): void {
    // A microtask later, as when this waited for a promise of the relay's result.
    queueMicrotask(() => this.resolveDone(this.finish(result)));
  }

  /** Never rejects: `done` is the session's end as the tunnel waits for it (no promise chained on it per client). */
  private async finish(result: TransactionRelayResult): Promise<void> {
    try {
      this.member.leave();
      this.leaving?.abort(CLIENT_LEFT);
      endRecord(this.record, this.identity, result.error, this.expiry);
      if (result.lease) await this.pool.release(result.lease, result.serverBroken || this.changedUser ? undefined : result.tracker, () => this.options.getToken());
    } catch (error) {
      this.record.rejected(this.identity, clientFailure(error)?.message ?? errorMessage(error));
    } finally {
      connectionIds.release(this.connectionId);
    }
  }
}

async function tokenFor(options: SessionOptions, signal: AbortSignal): Promise<string> {
  return options.getToken(signal).catch((error: unknown) => {
    throw tokenUnavailable(options.target, error);
  });
}

/** azdb's OK to the client's login; returns the client bytes read past it. */
function greet(p: PooledClient, token: string): Buffer {
  const early = p.client.reader.detach();
  (p.client.socket as Socket).write(p.client.frame(encodeOk({ statusFlags: ServerStatus.Autocommit }, p.login.capabilities)));
  p.record.started(p.identity, p.dbUser, p.login.database, token, p.signedIn);
  return early;
}

/** disconnect_expired: the person's token's expiry, for the relay to cut at its next boundary. */
function expiryFor(p: PooledClient): PooledExpiry | undefined {
  if (!p.signedIn || !p.options.entra?.disconnectExpired) return undefined;
  return pooledExpiry(p.signedIn.person.expiresAt, MYSQL_FAREWELL.client, () => p.options.onEvent?.({ type: 'expired-disconnect' }));
}

function endRecord(record: PooledClient['record'], identity: SessionIdentity, error: string | undefined, expiry: PooledExpiry | undefined): void {
  expiry?.stop();
  const why = expiry?.fired ? EXPIRED_MESSAGE : error;
  record.ended(identity, why ? 'error' : 'ok', why);
}

/** What change-user.ts needs, on whichever server connection the client holds when it runs. */
function changeContext(p: PooledClient, connection: () => MySqlServerConnection, holdUpstream: () => Promise<() => void>): ChangeUserContext {
  return {
    client: p.client.socket as Socket,
    get upstream() {
      return connection().socket;
    },
    get upstreamGreeting() {
      return connection().greeting;
    },
    get upstreamCapabilities() {
      return connection().capabilities;
    },
    scramble: p.scramble,
    capabilities: p.login.capabilities,
    options: p.options,
    identity: p.identity,
    holdUpstream,
  };
}

/** What a client gets when no connection could be taken for it. */
function acquireFailure(pool: MySqlPool, loginUser: string, error: unknown): MySqlClientError {
  const target = pool.target;
  if (error instanceof MySqlClientError) return error;
  if (error instanceof PoolWaitTimeout) return poolBusy(pool, loginUser, error.waitedMs);
  if (error instanceof PoolClosed) return new MySqlClientError({ code: SERVER_SHUTDOWN, sqlState: '08S01', message: `the azdb listener for ${target.name} is shutting down` });
  if (error instanceof MySqlUpstreamRefused) return upstreamRefused(error.err, target, loginUser);
  return upstreamFailure(error, target);
}

function poolBusy(pool: MySqlPool, loginUser: string, waitedMs: number): MySqlClientError {
  return new MySqlClientError({
    code: TOO_MANY_CONNECTIONS,
    sqlState: '08004',
    message:
      `Too many connections: all ${pool.limits.maxServerConnections} pooled server connections for user '${loginUser}' on ${pool.target.name} are busy; waited ${(waitedMs / 1000).toFixed(1)} s. ` +
      'Raise pool.max_server_connections (or pool.max_client_wait) in azdb.yaml, or have clients hold their connections for shorter',
  });
}
