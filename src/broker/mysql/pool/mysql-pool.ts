/**
 * The pool of one MySQL listener or tunnel (session or transaction mode): the PoolManager's decisions with the
 * I/O they need. A key is the database, the login user, the database name (the handshake's
 * schema), the identity whose token logs the connection in (from the token's claims) and the
 * protocol the client agreed on (capabilities, MariaDB's extended ones, the character set: they
 * shape every packet), so a connection is never handed to a client of another key. Every login
 * takes a token from the cache.
 *
 * In transaction mode a connection goes back between a client's transactions as it is
 * (`giveBack`: nothing of the client's is on it, or the client would be pinned). When a client's
 * session ends, a connection whose every command was answered is reset: COM_RESET_CONNECTION
 * (rolls back, drops temporary tables, user variables, prepared statements, session variables,
 * locks) and COM_INIT_DB back to the key's database; with no database in the key, or on a server
 * without COM_RESET_CONNECTION, COM_CHANGE_USER to the same user with a fresh token does both.
 * Anything else (a command still running, a connection that broke, changed user, or failed the
 * reset) is closed instead.
 */
import type { UpstreamTarget } from '../../target.js';
import { DEFAULT_MAX_PREPARED_STATEMENTS, identityOf, type PoolEvents, type PoolKeyInfo, type PoolMode, type PostgresPoolLimits } from '../../pool/pool-limits.js';
import { PoolManager, systemClock, type Clock, type Lease } from '../../pool/pool-manager.js';
import { PoolMembers, type KeyStatsWithClients, type Membership } from '../../pool/pool-members.js';
import { capabilitiesLacking } from '../client-login.js';
import { Command } from '../codec/commands.js';
import { encodePacket } from '../codec/packets.js';
import { ResponseHeader, decodeErr } from '../codec/responses.js';
import { PayloadWriter } from '../codec/values.js';
import { learnGreeting } from '../greeting-facts.js';
import { serverChanged } from '../session-errors.js';
import { changeUserUpstream, connectUpstream, loginUpstream, type UpstreamLogin } from '../upstream.js';
import type { ExchangeTracker } from './exchange-tracker.js';
import { runOwnCommand, serverConnection, type MySqlServerConnection } from './server-connection.js';
import { watchIdle } from '../../pool/connection-watch.js';

export type { PoolKeyInfo };

type MySqlPoolEvents = PoolEvents;

/** How a client logs in: the key's parts beyond the identity, and what a new connection's login sends. */
type MySqlPoolLogin = UpstreamLogin;

/** What the clients of one key with the same login share while any of them is connected. */
interface SharedLogin {
  /** All of the login, as the pool's map of them is keyed. */
  alike: string;
  key: string;
  info: PoolKeyInfo;
  login: MySqlPoolLogin;
  /** Members holding it; the entry goes with the last. */
  members: number;
}

/**
 * A client's place in the pool from join to leave: a class whose key, key info and login are
 * shared with every client that logged in alike (an idle transaction-mode client keeps its member
 * for its whole session; a per-client key string, info and connection attributes were ~0.7 KiB).
 */
export class MySqlPoolMember {
  constructor(
    private readonly pool: MySqlPool,
    private readonly shared: SharedLogin,
    private readonly membership: Membership,
  ) {}

  /** The upstream login user of the key. */
  get loginUser(): string {
    return this.shared.login.user;
  }

  acquire(token: string, signal?: AbortSignal): Promise<Lease<MySqlServerConnection>> {
    const { key, info, login } = this.shared;
    return this.pool.acquireKeyed(key, info, login, token, signal);
  }

  /** Reports the client's pin once. */
  pin(reason: string): void {
    if (this.membership.pin()) this.pool.events.onPin?.(this.shared.info, reason);
  }

  leave(): void {
    this.membership.leave();
    this.pool.unshare(this.shared);
  }
}

const SWEEP_INTERVAL_MS = 1_000;
const ER_UNKNOWN_COM_ERROR = 1047;
const QUIT = Buffer.from([Command.Quit]);

export class MySqlPool {
  private readonly manager: PoolManager<MySqlServerConnection, PoolKeyInfo>;
  private readonly unwatch = new WeakMap<MySqlServerConnection, () => void>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly members = new PoolMembers<PoolKeyInfo>();
  /** Transaction mode: binary-protocol prepared statements kept per server connection (statement-mapper.ts); 0 = each one pins. */
  readonly mode: PoolMode;
  readonly maxPreparedStatements: number;
  /** The login of each connection, for the COM_CHANGE_USER that resets it. */
  private readonly logins = new WeakMap<MySqlServerConnection, MySqlPoolLogin>();
  /** The logins of the clients connected, one entry per distinct login (see MySqlPoolMember). */
  private readonly shared = new Map<string, SharedLogin>();

  constructor(
    readonly target: UpstreamTarget,
    readonly limits: PostgresPoolLimits,
    readonly events: MySqlPoolEvents = {},
    clock: Clock = systemClock,
  ) {
    this.mode = limits.mode ?? 'session';
    this.maxPreparedStatements = limits.maxPreparedStatements ?? DEFAULT_MAX_PREPARED_STATEMENTS;
    this.manager = new PoolManager<MySqlServerConnection, PoolKeyInfo>(
      limits,
      {
        close: (connection) => this.closeConnection(connection),
        onWait: (info, waitedMs) => this.events.onWait?.(info, waitedMs),
      },
      clock,
    );
    this.sweeper = setInterval(() => this.manager.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /**
   * A server connection for this client: `token` names the identity of the key and logs in a new
   * connection when one is needed. Throws PoolWaitTimeout when every connection of the key stayed
   * busy for max_client_wait, MySqlClientError when the server no longer offers what the client
   * agreed on, or the login's error.
   */
  async acquire(login: MySqlPoolLogin, token: string, signal?: AbortSignal): Promise<Lease<MySqlServerConnection>> {
    const { key, info } = this.keyOf(login, token);
    return this.acquireKeyed(key, info, login, token, signal);
  }

  /** @internal for MySqlPoolMember */
  async acquireKeyed(key: string, info: PoolKeyInfo, login: MySqlPoolLogin, token: string, signal: AbortSignal | undefined): Promise<Lease<MySqlServerConnection>> {
    const lease = await this.manager.acquire(key, info, () => this.open(login, token, info, signal), signal);
    this.unwatch.get(lease.connection)?.();
    this.unwatch.delete(lease.connection);
    return lease;
  }

  /**
   * Gives the connection back after the client's session: reset and kept when every command was
   * answered, closed otherwise. `getToken` is asked only when the reset is a COM_CHANGE_USER.
   */
  async release(lease: Lease<MySqlServerConnection>, tracker: ExchangeTracker | undefined, getToken: () => Promise<string>): Promise<void> {
    const connection = lease.connection;
    let reusable = false;
    if (tracker?.idle && !connection.broken) {
      try {
        reusable = await this.reset(connection, getToken);
      } catch {
        reusable = false;
      }
      reusable &&= !connection.broken;
    }
    if (reusable) this.unwatch.set(connection, watchIdle(connection, () => this.manager.drop(connection)));
    lease.release(reusable);
  }

  /** Back to the pool as it is, between a transaction-mode client's transactions (nothing of the client's is left on it). */
  giveBack(lease: Lease<MySqlServerConnection>): void {
    const connection = lease.connection;
    const reusable = !connection.broken;
    if (reusable) this.unwatch.set(connection, watchIdle(connection, () => this.manager.drop(connection)));
    lease.release(reusable);
  }

  /**
   * A client joins for its session (counted as connected until it leaves); `pin` reports its pin
   * once. `acquire` is the pool's for the key worked out here once (a transaction-mode client
   * acquires per transaction), `token` logging in a new connection. Clients whose logins are
   * alike in every field share one key, info and login object.
   */
  join(login: MySqlPoolLogin, token: string): MySqlPoolMember {
    const identity = identityOf(token);
    const alike = JSON.stringify([identity, login.user, login.database, login.capabilities, login.mariadbCapabilities, login.characterSet, login.maxPacketSize, login.connectAttributes ?? null]);
    let shared = this.shared.get(alike);
    if (!shared) {
      const { key, info } = this.keyOf(login, token, identity);
      this.shared.set(alike, (shared = { alike, key, info, login, members: 0 }));
    }
    shared.members++;
    return new MySqlPoolMember(this, shared, this.members.join(shared.key, shared.info));
  }

  /** @internal a member left */
  unshare(shared: SharedLogin): void {
    if (--shared.members > 0) return;
    if (this.shared.get(shared.alike) === shared) this.shared.delete(shared.alike);
  }

  stats(): KeyStatsWithClients<PoolKeyInfo>[] {
    return this.members.merge(this.manager.stats());
  }

  private keyOf(login: MySqlPoolLogin, token: string, identity = identityOf(token)): { key: string; info: PoolKeyInfo } {
    const info: PoolKeyInfo = { database: this.target.name, dbUser: login.user, dbName: login.database, identity };
    const protocol = [login.capabilities, login.mariadbCapabilities, login.characterSet];
    const key = JSON.stringify([info.database, info.dbUser, info.dbName, info.identity, ...protocol]);
    return { key, info };
  }

  close(): void {
    clearInterval(this.sweeper);
    this.manager.close();
  }

  private async open(login: MySqlPoolLogin, token: string, info: PoolKeyInfo, signal: AbortSignal | undefined): Promise<MySqlServerConnection> {
    const upstream = await connectUpstream(this.target, signal);
    learnGreeting(this.target, upstream.greeting);
    const lacking = capabilitiesLacking(upstream.greeting, login.capabilities, login.mariadbCapabilities);
    if (lacking !== undefined) {
      upstream.leg.reader.detach();
      upstream.tcp.destroy();
      throw serverChanged(this.target, lacking);
    }
    const session = await loginUpstream(upstream, this.target, login, token);
    this.events.onLogin?.(info);
    const connection = serverConnection(session, upstream.greeting, (c) => this.manager.drop(c));
    this.logins.set(connection, login);
    return connection;
  }

  /** True when the connection is back in the state of a fresh login of its key. */
  private async reset(connection: MySqlServerConnection, getToken: () => Promise<string>): Promise<boolean> {
    const login = this.logins.get(connection);
    if (!login) return false;
    // Every reset below drops the server's prepared statements.
    connection.prepared.clear();
    if (login.database !== '') {
      const reset = await runOwnCommand(connection, Buffer.from([Command.ResetConnection]));
      if (reset[0] === ResponseHeader.Ok) {
        const use = await runOwnCommand(connection, new PayloadWriter().u8(Command.InitDb).string(login.database).finish());
        return use[0] === ResponseHeader.Ok;
      }
      if (reset[0] !== ResponseHeader.Err || decodeErr(reset).code !== ER_UNKNOWN_COM_ERROR) return false;
    }
    // No database to go back to (a client's USE would stay), or a server without the command.
    const token = await getToken();
    const { rest } = await changeUserUpstream(
      connection.socket,
      connection.greeting,
      this.target,
      { user: login.user, database: login.database, characterSet: login.characterSet, connectAttributes: login.connectAttributes },
      token,
      connection.capabilities,
    );
    // Bytes after the OK that nobody asked for: the connection is not at rest (as runOwnCommand judges).
    if (rest.length > 0) connection.broken = true;
    return rest.length === 0;
  }

  private closeConnection(connection: MySqlServerConnection): void {
    this.unwatch.get(connection)?.();
    this.unwatch.delete(connection);
    connection.broken = true;
    if (connection.socket.destroyed) return;
    // COM_QUIT, as a client leaves: the server does not count it as an aborted connection.
    connection.socket.end(encodePacket(0, QUIT));
    connection.socket.once('finish', () => connection.socket.destroy());
  }
}
