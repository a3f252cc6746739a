/**
 * The pool of one listener or tunnel (session or transaction mode): the PoolManager's decisions
 * with the I/O they need. A key is the database, the login user, the database name, the startup `options`
 * and the identity whose token logs the connection in (object id or app id, and tenant, from the
 * token's claims), so a connection is never handed to a client of another key. Every login takes
 * a token from the cache. When a client's session ends on a connection the server state is reset
 * (ROLLBACK when a transaction was left open, then DISCARD ALL); a connection that cannot be reset
 * safely is closed instead. In transaction mode a connection also comes back between a client's
 * transactions, with nothing to reset (releaseIdle): the client's parameters are tracked per
 * connection (applySettings) and what cannot be handed over pins the client instead.
 */
import { DEFAULT_MAX_PREPARED_STATEMENTS, identityOf, type PoolEvents, type PoolKeyInfo, type PoolMode, type PostgresPoolLimits } from '../../pool/pool-limits.js';
import type { UpstreamTarget } from '../../target.js';
import { encodeMessage } from '../codec/frames.js';
import { PgUpstreamRefused, loginUpstream } from '../upstream.js';
import { GreetingCache, greetingSignature, type GreetingSignature } from './greeting-cache.js';
import { PoolManager, systemClock, type Clock, type KeyStats, type Lease, type LeaseRequest, type PoolLimits } from '../../pool/pool-manager.js';
import type { PinReason } from './pin-scanner.js';
import { applySettings, hasSettings, settingsTarget, runOwnQuery, serverConnection, type OwnQueryResult, type ServerConnection, type ServerReader } from './server-connection.js';
import type { SessionTracker } from './session-tracker.js';
import { PoolMembers, type KeyStatsWithClients, type Membership } from '../../pool/pool-members.js';

// Shared with the MySQL pool, where callers found them before they moved.
export { DEFAULT_MAX_PREPARED_STATEMENTS, identityOf, poolLimits, type PoolEvents, type PoolKeyInfo, type PoolMode, type PostgresPoolLimits } from '../../pool/pool-limits.js';

/** The manager's numbers of a key, with its clients: connected (attached or not) and pinned. */
export type PostgresKeyStats = KeyStatsWithClients<PoolKeyInfo>;

/** One client's membership of the pool, for its whole session. */
export interface PoolMember {
  readonly info: PoolKeyInfo;
  /**
   * A server connection of the client's key, its parameters made the client's `settings`; rejects
   * with PgUpstreamRefused when the server refuses one of them (the connection goes back idle).
   */
  acquire(settings: Record<string, string>, signal?: AbortSignal): Promise<Lease<ServerConnection>>;
  /**
   * `acquire` for a transaction, answered through `receiver` (perhaps before this returns), which
   * must read the connection in the same turn it is granted: it is not paused in between.
   */
  requestForTransaction(settings: Record<string, string>, signal: AbortSignal, receiver: LeaseReceiver): void;
  /**
   * Transaction mode: the ParameterStatus values to greet the client with when a connection of its
   * key reported them for these settings before (greeting-cache.ts); undefined: borrow one.
   */
  knownGreeting(settings: Record<string, string>): Map<string, string> | undefined;
  /** The client keeps its connection from now on (counted once per client). */
  pin(reason: PinReason): void;
  leave(): void;
}

/** Who a transaction's connection is handed to; neither method may throw. */
export interface LeaseReceiver {
  granted(lease: Lease<ServerConnection>): void;
  /** PgUpstreamRefused (a setting refused), PoolWaitTimeout, PoolClosed, the login's error or the signal's reason. */
  refused(error: unknown): void;
}

export interface PoolLogin {
  loginUser: string;
  dbName: string;
  /** The client's startup `options` (`-c name=value`), which are part of the key. */
  options?: string;
}

const SWEEP_INTERVAL_MS = 1_000;
const TERMINATE = encodeMessage(0x58 /* X */);

export class PostgresPool {
  private readonly manager: PoolManager<ServerConnection, PoolKeyInfo>;
  /** The reader of every idle connection: any byte from the server makes it unusable. */
  private readonly idleWatch: ServerReader = {
    data: (_chunk, connection) => {
      connection.broken = true;
      this.manager.drop(connection);
    },
    drain: () => {},
    gone: () => {},
  };
  private readonly sweeper: NodeJS.Timeout;
  private readonly members = new PoolMembers<PoolKeyInfo>();
  private readonly greetings = new GreetingCache();
  readonly mode: PoolMode;
  readonly maxPreparedStatements: number;

  constructor(
    readonly target: UpstreamTarget,
    readonly limits: PostgresPoolLimits,
    private readonly events: PoolEvents = {},
    clock: Clock = systemClock,
  ) {
    this.manager = new PoolManager<ServerConnection, PoolKeyInfo>(
      limits,
      {
        close: (connection) => this.closeConnection(connection),
        onWait: (info, waitedMs) => this.events.onWait?.(info, waitedMs),
      },
      clock,
    );
    this.sweeper = setInterval(() => this.manager.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    this.mode = limits.mode ?? 'session';
    this.maxPreparedStatements = limits.maxPreparedStatements ?? DEFAULT_MAX_PREPARED_STATEMENTS;
  }

  /** A client joins for its session: `token` (from the cache) names the identity of its key. */
  join(login: PoolLogin, token: string): PoolMember {
    const info: PoolKeyInfo = { database: this.target.name, dbUser: login.loginUser, dbName: login.dbName, identity: identityOf(token) };
    const key = JSON.stringify([info.database, info.dbUser, info.dbName, login.options ?? '', info.identity]);
    // The key's first member's key and info serve all its members: each client keeps no copy.
    return new PostgresPoolMember(this, this.members.join(key, info), login, token);
  }

  /** Once per session (session mode, a transaction-mode client's first greeting): a promise will do. */
  acquireFor(member: PostgresPoolMember, settings: Record<string, string>, signal: AbortSignal | undefined): Promise<Lease<ServerConnection>> {
    return new Promise((resolve, reject) => {
      const request = new MemberRequest(this, member, false);
      request.ask(settings, signal, { granted: resolve, refused: reject });
    });
  }

  /** @internal for MemberRequest: a connection of the member's key is the member's once its settings are applied. */
  grant(member: PostgresPoolMember, settings: Record<string, string>, lease: Lease<ServerConnection>, receiver: LeaseReceiver, sameTurn: boolean): void {
    const connection = lease.connection;
    const watched = connection.reader === this.idleWatch;
    if (watched) connection.reader = undefined;
    const key = member.key;
    const mine = member.derive(settings);
    const target = (mine.target ??= settingsTarget(settings));
    if (hasSettings(connection, target)) {
      // The receiver reads it now, or it waits in the socket until its holder reads it.
      if (watched && !sameTurn) connection.socket.pause();
      receiver.granted(this.greeted(key, mine, lease));
      return;
    }
    if (watched) connection.socket.pause();
    this.applyClientSettings(lease, target).then(
      () => receiver.granted(this.greeted(key, member.derive(settings), lease)),
      (error: unknown) => receiver.refused(error),
    );
  }

  /** @internal for MemberRequest: a new connection of the member's key, logged in with its token. */
  open(member: PostgresPoolMember, signal: AbortSignal | undefined): Promise<ServerConnection> {
    const { login, info } = member;
    return loginUpstream(this.target, { user: login.loginUser, database: login.dbName, params: login.options ? { options: login.options } : {} }, member.token, signal).then((session) => {
      this.events.onLogin?.(info);
      return serverConnection(session, (connection) => this.manager.drop(connection));
    });
  }

  /** @internal for MemberRequest */
  request(member: PostgresPoolMember, request: LeaseRequest<ServerConnection>, signal: AbortSignal | undefined): void {
    this.manager.request(member.key, member.info, request, signal);
  }

  /** Not kept with the member: most clients greeted this way idle, and only a transaction's acquire needs `derive`. */
  knownGreetingFor(member: PostgresPoolMember, settings: Record<string, string>): Map<string, string> | undefined {
    const signature = greetingSignature(settings);
    return signature && this.greetings.lookup(member.key, signature);
  }

  pinned(info: PoolKeyInfo, reason: PinReason): void {
    this.events.onPin?.(info, reason);
  }

  /** Makes the lease's connection have `target`; on failure the lease is given back and the error thrown. */
  private async applyClientSettings(lease: Lease<ServerConnection>, target: ReadonlyMap<string, string>): Promise<void> {
    let applied: OwnQueryResult | undefined;
    try {
      applied = await applySettings(lease.connection, target);
    } catch (error) {
      lease.release(false);
      throw error;
    }
    if (applied?.error) {
      // One query that failed changed nothing: the connection is as usable as before.
      this.releaseIdle(lease);
      throw new PgUpstreamRefused({ ...applied.error, S: 'FATAL' }, Buffer.alloc(0));
    }
  }

  /** Transaction mode: the key remembers what a connection reported for these settings, for later greetings. */
  private greeted(key: string, mine: DerivedSettings, lease: Lease<ServerConnection>): Lease<ServerConnection> {
    if (this.mode === 'transaction' && mine.signature && (lease.fresh || !mine.remembered)) {
      if (lease.fresh || !this.greetings.has(key, mine.signature)) this.greetings.remember(key, mine.signature, lease.connection.parameters);
      mine.remembered = true;
    }
    return lease;
  }

  /**
   * Gives the connection back after the client's session: reset and kept when the server waits
   * for a query (a transaction left open is rolled back first), closed otherwise (a query or COPY
   * still running, a broken connection, a reset that failed).
   */
  async release(lease: Lease<ServerConnection>, tracker: SessionTracker | undefined, serverBroken: boolean): Promise<void> {
    const connection = lease.connection;
    const status = serverBroken || connection.broken || !tracker ? undefined : tracker.idleStatus();
    let reusable = false;
    if (status !== undefined) {
      try {
        const rolledBack = status === 'I' || (await runOwnQuery(connection, 'ROLLBACK')).error === undefined;
        const reset = rolledBack ? await runOwnQuery(connection, 'DISCARD ALL') : undefined;
        if (reset?.error === undefined) {
          connection.settings.clear();
          connection.prepared.clear();
        }
        reusable = reset !== undefined && reset.error === undefined && reset.status === 'I' && !connection.broken;
      } catch {
        reusable = false;
      }
    }
    if (reusable) this.watchIdle(connection);
    lease.release(reusable);
  }

  /**
   * Gives the connection back between a client's transactions (transaction mode): the server
   * waits for a query outside a transaction, so there is nothing to reset.
   */
  releaseIdle(lease: Lease<ServerConnection>): void {
    const connection = lease.connection;
    const reusable = !connection.broken && !connection.socket.destroyed;
    if (reusable) this.watchIdle(connection);
    lease.release(reusable);
  }

  stats(): PostgresKeyStats[] {
    return this.members.merge(this.manager.stats());
  }

  close(): void {
    clearInterval(this.sweeper);
    this.manager.close();
  }

  /** While idle in the pool the socket is read, so that what the server sends unasked (a FATAL before it goes) is noticed. */
  private watchIdle(connection: ServerConnection): void {
    connection.reader = this.idleWatch;
    // Paused by a query of the pool's own, or by the relay's backpressure; else flowing already
    // (resume() would cost a tick per transaction for nothing).
    if (connection.socket.isPaused()) connection.socket.resume();
  }

  private closeConnection(connection: ServerConnection): void {
    if (connection.reader === this.idleWatch) {
      connection.reader = undefined;
      connection.socket.pause();
    }
    connection.broken = true;
    if (connection.socket.destroyed) return;
    connection.socket.end(TERMINATE);
    connection.socket.once('finish', () => connection.socket.destroy());
  }
}

/** What the pool needs of a client's settings, worked out once per client (it passes the same ones on every acquire). */
interface DerivedSettings {
  settings: Record<string, string>;
  target?: Map<string, string>;
  signature: GreetingSignature | undefined;
  /** This client's greeting was remembered for its key. */
  remembered: boolean;
}

/** A class, not an object of closures: an idle pooled client keeps its membership for its whole session. */
class PostgresPoolMember implements PoolMember {
  private derived: DerivedSettings | undefined;
  /** The request its transactions reuse: one object for all of them. */
  private transactions: MemberRequest | undefined;

  constructor(
    private readonly pool: PostgresPool,
    private readonly membership: Membership<PoolKeyInfo>,
    readonly login: PoolLogin,
    readonly token: string,
  ) {}

  get info(): PoolKeyInfo {
    return this.membership.info;
  }

  get key(): string {
    return this.membership.key;
  }

  derive(settings: Record<string, string>): DerivedSettings {
    if (this.derived?.settings !== settings) this.derived = { settings, signature: greetingSignature(settings), remembered: false };
    return this.derived;
  }

  acquire(settings: Record<string, string>, signal?: AbortSignal): Promise<Lease<ServerConnection>> {
    return this.pool.acquireFor(this, settings, signal);
  }

  requestForTransaction(settings: Record<string, string>, signal: AbortSignal, receiver: LeaseReceiver): void {
    (this.transactions ??= new MemberRequest(this.pool, this, true)).ask(settings, signal, receiver);
  }

  knownGreeting(settings: Record<string, string>): Map<string, string> | undefined {
    return this.pool.knownGreetingFor(this, settings);
  }

  pin(reason: PinReason): void {
    if (this.membership.pin()) this.pool.pinned(this.info, reason);
  }

  leave(): void {
    this.membership.leave();
  }
}

/**
 * A member's request to the manager, as an object rather than closures: a transaction-mode client
 * asks once per transaction and reuses it (one wait at a time); `sameTurn` says its receiver reads
 * the connection in the turn it is granted.
 */
class MemberRequest implements LeaseRequest<ServerConnection> {
  private settings: Record<string, string> = {};
  private signal: AbortSignal | undefined;
  private receiver: LeaseReceiver | undefined;

  constructor(
    private readonly pool: PostgresPool,
    private readonly member: PostgresPoolMember,
    private readonly sameTurn: boolean,
  ) {}

  ask(settings: Record<string, string>, signal: AbortSignal | undefined, receiver: LeaseReceiver): void {
    this.settings = settings;
    this.signal = signal;
    this.receiver = receiver;
    this.pool.request(this.member, this, signal);
  }

  open(): Promise<ServerConnection> {
    return this.pool.open(this.member, this.signal);
  }

  granted(lease: Lease<ServerConnection>): void {
    this.pool.grant(this.member, this.settings, lease, this.receiver!, this.sameTurn);
  }

  refused(error: Error): void {
    this.receiver!.refused(error);
  }
}
