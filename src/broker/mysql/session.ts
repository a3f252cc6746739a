/**
 * One MySQL client connection through the broker, as an explicit sequence of steps:
 *
 *   Greeting (azdb's own handshake, from the server's learned greeting facts) → Authenticating
 *   (tunnel password) → Authorizing (roles) → LoggingInUpstream (token, TCP, the server's
 *   greeting, TLS, login) → Relaying → Closed
 *
 * No server connection exists before the client proved the tunnel password: a silent socket or a
 * wrong password never reaches the server (whose max_connect_errors would block the broker's host
 * for everyone). The greeting's connection id is azdb's own (connection-ids.ts); the command gate
 * translates `KILL QUERY <that id>` (how mysql's Ctrl+C cancels) to the server's thread.
 * Every failure before Relaying reaches the client as an ERR packet after azdb's greeting (a server
 * that cannot be reached too), with a server-range code, a
 * SQLSTATE and a message that says what to do; the broker and its other sessions are unaffected. Once
 * relaying, server→client bytes are piped raw; client→server bytes pass a gate that feeds the
 * audit, without buffering packet bodies, and hands COM_CHANGE_USER to change-user.ts.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { errorMessage } from '../../errors.js';
import { PeerClosedError } from '../wire-reader.js';
import type { SessionIdentity } from '../audit.js';
import { clientAddress, newSessionId, sessionRecord, type SessionOptions, type SessionRecord } from '../session-record.js';
import { loginWait } from '../login-wait.js';
import { hangUp, relay } from '../relay.js';
import { afterWrongPassword, loginRefusal } from '../login-guard.js';
import { upstreamLoginUser } from '../target.js';
import { AuthPlugin, createScramble, decodeClearPassword } from './auth.js';
import { decodeAuthSwitchResponse, encodeAuthSwitchRequest } from './codec/auth-messages.js';
import { isBlameless, refusalFor, upstreamTokenGetter, type SignedIn } from '../client-entra.js';
import { loopbackPeerUser } from '../peer-user.js';
import { EXPIRED_MESSAGE, watchExpiry } from '../expiry-watch.js';
import { MYSQL_FAREWELL, mysqlBoundary } from './transaction-boundary.js';
import { authenticateClient, capabilitiesLacking, encodeGreeting, greetingCapabilities, greetingMariaDbCapabilities, receiveLogin, type PasswordProof } from './client-login.js';
import { connectionIds, serverKey } from './connection-ids.js';
import { greetingFacts, learnGreeting, type GreetingFacts } from './greeting-facts.js';
import { Capability, MariaDbCapability, hasCapability } from './codec/constants.js';
import { PacketLeg } from './packet-leg.js';
import { encodeErr } from './codec/responses.js';
import type { ChangeUserContext } from './change-user.js';
import { commandGate } from './session-gate.js';
import type { MySqlPool } from './pool/mysql-pool.js';
import { relayPooled } from './pool/pooled-session.js';
import {
  ErrorCode,
  MySqlClientError,
  clientFailure,
  deniedByRoles,
  entraNeedsTls,
  entraRefused,
  hostBlocked,
  hostOf,
  insecureTransport,
  serverChanged,
  tokenUnavailable,
  upstreamFailure,
  upstreamRefused,
} from './session-errors.js';
import { MySqlUpstreamRefused, connectUpstream, loginUpstream, type UpstreamConnection } from './upstream.js';

/**
 * Clients prove the local password with mysql_native_password or caching_sha2_password; with
 * clientTls the greeting offers TLS. handshakeTimeoutMs @default 30_000.
 */
export type MySqlSessionOptions = SessionOptions & {
  /** Server connections shared by the clients of one listener or tunnel (session mode). */
  pool?: MySqlPool;
};

/** A HandshakeResponse41 with 64 KiB of connection attributes fits easily. */
const MAX_CLIENT_LOGIN_PACKET = 256 * 1024;

export async function runMySqlSession(clientSocket: Socket, options: MySqlSessionOptions): Promise<void> {
  const id = newSessionId();
  const started = Date.now();
  const record = sessionRecord(id, clientSocket, options.audit, options.onEvent, started);
  const { target } = options;
  const handshakeMs = options.handshakeTimeoutMs ?? 30_000;
  const deadline = { at: started + handshakeMs, what: 'the client to log in' };
  const client = new PacketLeg(clientSocket, deadline, MAX_CLIENT_LOGIN_PACKET);
  let upstream: UpstreamConnection | undefined;
  let identity: SessionIdentity | undefined;
  let relaying = false;
  /** A pooled session's end is awaited by the caller, not here: the connection id goes back then. */
  let handedOff = false;
  let connectionId: number | undefined;
  try {
    // A source waiting out its login backoff: refused before any server connection, unaudited.
    const retryIn = loginRefusal(options, clientSocket.remoteAddress);
    if (retryIn !== undefined) {
      client.reader.detach();
      await hangUp(clientSocket, client.frame(encodeErr(hostBlocked(hostOf(clientSocket.remoteAddress), retryIn).err)));
      return;
    }

    // Greeting, from what this server's last greeting said (probed once per process when nothing
    // is known yet): no server connection exists until the client proved the tunnel password, so
    // silent sockets and wrong passwords never count against the server's max_connect_errors.
    // Under `broker.audit.on_failure: block` a full audit queue holds new sessions here.
    await options.audit.wait();
    if (clientSocket.destroyed) throw new PeerClosedError();
    const facts = (await greetingFacts(target, options.closing)) ?? STAND_IN_GREETING;
    if (clientSocket.destroyed) throw new PeerClosedError();
    const scramble = createScramble();
    connectionId = connectionIds.mint(serverKey(target));
    let offered = greetingCapabilities(facts.capabilities, options.clientTls !== undefined);
    let mariadbOffered = greetingMariaDbCapabilities(facts.mariadbCapabilities);
    if (options.pool) {
      // A pooled connection's answers are followed packet by packet: every result set must
      // carry its column definitions.
      offered = (offered & ~Capability.OptionalResultsetMetadata) >>> 0;
      mariadbOffered = (mariadbOffered & ~MariaDbCapability.CacheMetadata) >>> 0;
    }
    client.send(encodeGreeting({ ...facts, connectionId }, scramble, offered, mariadbOffered));

    // Authenticating: the tunnel's local password, never forwarded anywhere.
    const response = await receiveLogin(client, options.clientTls);
    if (options.requireClientTls && !(client.socket instanceof TLSSocket)) throw insecureTransport();
    const capabilities = (response.capabilities & offered) >>> 0;
    const mariadbCapabilities = (response.mariadbCapabilities & mariadbOffered) >>> 0;
    const dbUser = response.username || options.defaults.dbUser || '';
    const dbName = response.database || options.defaults.dbName || '';
    identity = {
      session_id: id,
      database: target.name,
      protocol: 'mysql',
      db_user: dbUser,
      db_name: dbName,
      client_address: clientAddress(clientSocket),
    };
    const host = hostOf(clientSocket.remoteAddress);
    const signingIn = options.entra
      ? signInWithEntra(client, response, scramble, options, host)
      : authenticateClient(client, response, scramble, options.localPassword, host).then(() => undefined);
    const signedIn = await signingIn.catch(async (error: unknown) => {
      if (error instanceof MySqlClientError && error.err.code === ErrorCode.AccessDenied && !isBlameless(error)) {
        await afterWrongPassword(options, clientSocket.remoteAddress, client.socket as Socket, deadline);
      }
      throw error;
    });
    options.logins?.succeeded(clientSocket.remoteAddress);

    // Authorizing
    const decision = options.authorize(dbUser, dbName, signedIn?.person);
    if (!decision.allowed) throw deniedByRoles(dbUser, dbName, target, decision.reason);
    const osUser = signedIn ? await loopbackPeerUser(clientSocket) : undefined;

    const login = {
      database: dbName,
      capabilities,
      mariadbCapabilities,
      maxPacketSize: response.maxPacketSize,
      characterSet: response.characterSet,
      connectAttributes: response.connectAttributes,
    };
    if (options.pool) {
      const wait = loginWait(deadline, handshakeMs, options.closing);
      // The person's own token logs pooled connections in too (and keys them) with upstream_identity: client.
      const pooledOptions = upstreamTokenGetter(options, options.entra, signedIn);
      const who = signedIn ? { person: signedIn.person, decision, ...(osUser ? { osUser } : {}) } : undefined;
      const relaying = await relayPooled({ options: pooledOptions, pool: options.pool, client, login, dbUser, identity, record, scramble, connectionId, wait, ...(who ? { signedIn: who } : {}) });
      // Returned, not awaited: this function's frame (and the login's locals in it: the decoded
      // handshake response, the greeting facts) ends here while the relay goes on in callbacks, so
      // an idle pooled client keeps no suspended function. The connection id goes back at the end.
      handedOff = true;
      return relaying.greeted ? relaying.done : pooledSessionEnd(relaying.done, client, record, identity, connectionId);
    }

    // LoggingInUpstream, within the client's login deadline: the token first, so the server
    // connection is opened only when the login can follow at once.
    const wait = loginWait(deadline, handshakeMs, options.closing);
    const token = await upstreamTokenGetter(options, options.entra, signedIn)
      .getToken(wait.signal)
      .catch((error: unknown) => {
        throw tokenUnavailable(target, error);
      })
      .finally(() => wait.dispose());
    upstream = await connectUpstream(target, options.closing).catch((error: unknown) => {
      throw error instanceof MySqlUpstreamRefused ? new MySqlClientError(error.err) : upstreamFailure(error, target);
    });
    learnGreeting(target, upstream.greeting);
    const lacking = capabilitiesLacking(upstream.greeting, capabilities, mariadbCapabilities);
    if (lacking !== undefined) throw serverChanged(target, lacking);
    const loginUser = upstreamLoginUser(target, dbUser);
    const connection = upstream;
    const session = await loginUpstream(connection, target, { ...login, user: loginUser }, token).catch((error: unknown) => {
      throw error instanceof MySqlUpstreamRefused ? upstreamRefused(error.err, target, loginUser) : upstreamFailure(error, target);
    });
    connectionIds.bind(connectionId, connection.greeting.connectionId);

    // Relaying
    relaying = true;
    const early = client.reader.detach();
    const socket = client.socket as Socket;
    socket.write(client.frame(session.ok));
    if (session.rest.length > 0) socket.write(session.rest);
    record.started(identity, dbUser, dbName, token, signedIn ? { person: signedIn.person, decision, osUser } : undefined);
    const change: ChangeUserContext = {
      client: socket,
      upstream: session.socket,
      upstreamGreeting: connection.greeting,
      upstreamCapabilities: session.capabilities,
      scramble,
      capabilities,
      options,
      identity,
      holdUpstream: async () => {
        session.socket.unpipe(socket);
        return () => session.socket.pipe(socket);
      },
    };
    const relayed = relay(socket, session.socket, early, commandGate(change), options.audit.queries ? () => options.audit.wait() : undefined);
    // After the relay's pipe: the watch sees each server chunk once the client has been sent it.
    const expiry =
      signedIn && options.entra?.disconnectExpired
        ? watchExpiry(socket, session.socket, signedIn.person.expiresAt, mysqlBoundary(capabilities, mariadbCapabilities, early), MYSQL_FAREWELL, () =>
            options.onEvent?.({ type: 'expired-disconnect' }),
          )
        : undefined;
    const result = await relayed;
    expiry?.stop();
    const error = expiry?.fired ? EXPIRED_MESSAGE : result.error;
    record.ended(identity, error ? 'error' : 'ok', error);
  } catch (error) {
    if (!relaying) {
      upstream?.leg.reader.detach();
      upstream?.leg.socket.destroy();
      upstream?.tcp.destroy();
    }
    await refuseSession(error, client, record, identity);
  } finally {
    if (connectionId !== undefined && !handedOff) connectionIds.release(connectionId);
  }
}

/**
 * A session-mode pooled session's end, from a function of its own: its callbacks keep what they
 * name, not the login's frame (runMySqlSession's context). The minted connection id goes back at
 * the end.
 */
function pooledSessionEnd(done: Promise<void>, client: PacketLeg, record: SessionRecord, identity: SessionIdentity, mintedId: number): Promise<void> {
  return done.catch((error: unknown) => refuseSession(error, client, record, identity)).finally(() => connectionIds.release(mintedId));
}

/** A session that failed: recorded, and the client told why when it is still there and there is something to say. */
async function refuseSession(error: unknown, client: PacketLeg, record: SessionRecord, identity: SessionIdentity | undefined): Promise<void> {
  const clientError = clientFailure(error);
  const message = clientError?.message ?? errorMessage(error);
  record.rejected(identity, message);
  const socket = client.socket as Socket;
  if (clientError && !socket.destroyed) {
    client.reader.detach();
    await hangUp(socket, client.frame(encodeErr(clientError.err)));
  }
}

/**
 * `client_auth: entra`: the password is the person's Entra token, asked for with
 * mysql_clear_password (as Azure does) and only over TLS: a client without it is refused before
 * it sends anything. A refusal is 1045 with the reason, never the token.
 */
async function signInWithEntra(leg: PacketLeg, response: PasswordProof, scramble: Buffer, options: MySqlSessionOptions, host: string): Promise<SignedIn> {
  if (!(leg.socket instanceof TLSSocket)) throw entraNeedsTls();
  let answer = response.authResponse;
  if (response.authPluginName !== AuthPlugin.ClearPassword) {
    if (!hasCapability(response.capabilities, Capability.PluginAuth)) throw entraNeedsTls();
    leg.send(encodeAuthSwitchRequest({ pluginName: AuthPlugin.ClearPassword, pluginData: Buffer.concat([scramble, Buffer.from([0])]) }));
    answer = decodeAuthSwitchResponse(await leg.receive());
  }
  const token = decodeClearPassword(answer);
  const verdict = await options.entra!.validate(token);
  if (!verdict.ok) {
    options.onEvent?.({ type: 'client-auth-refused', reason: verdict.reason });
    throw refusalFor(verdict.reason, entraRefused(response.username, host, verdict.reason, token.length > 0));
  }
  return { person: verdict.person, token };
}

/** What azdb greets with when the server could not be probed: a MySQL 8.0 server's capabilities. */
const STAND_IN_GREETING: GreetingFacts = {
  serverVersion: '8.0.0-azdb',
  capabilities: 0xffff_ffff, // greetingCapabilities keeps those azdb offers
  characterSet: 45, // utf8mb4_general_ci
  statusFlags: 0x0002, // SERVER_STATUS_AUTOCOMMIT
  authPluginName: 'mysql_native_password',
  mariadbCapabilities: 0,
};
