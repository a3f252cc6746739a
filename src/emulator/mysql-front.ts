/**
 * One emulated "Azure Database for MySQL" server: the TLS + Entra-token front that Azure puts
 * before MySQL. Like Azure it refuses clients that do not switch to TLS, asks for the password
 * with `mysql_clear_password`, accepts only a valid Entra access token (signature, audience,
 * expiry) whose identity matches the principal made by `CREATE AADUSER`, and then joins the
 * client to the real MariaDB as that principal's account. The client's greeting carries
 * MariaDB's own connection id, so `KILL QUERY <id>` from another connection works. The front
 * answers `CREATE AADUSER` itself (MariaDB has no such statement), for the server's Entra admin only.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { FrontState, type FrontHandle, type FrontOptions } from './front-server.js';
import { TLSSocket } from 'node:tls';
import { AuthPlugin, createScramble, decodeClearPassword, verifyNativePassword } from '../broker/mysql/auth.js';
import { decodeAuthSwitchResponse, encodeAuthSwitchRequest } from '../broker/mysql/codec/auth-messages.js';
import { Capability, hasCapability } from '../broker/mysql/codec/constants.js';
import { decodeClientHandshake, encodeHandshakeV10, type HandshakeResponse41 } from '../broker/mysql/codec/handshake.js';
import { encodePacket } from '../broker/mysql/codec/packets.js';
import { PacketLeg } from '../broker/mysql/packet-leg.js';
import { PROTOCOL_ERROR_SQLSTATE, MySqlProtocolError } from '../broker/mysql/codec/protocol-error.js';
import { encodeErr, encodeOk, type ErrPacket } from '../broker/mysql/codec/responses.js';
import { hostOf } from '../broker/mysql/session-errors.js';
import { ServerStatus } from '../broker/mysql/codec/constants.js';
import { HandshakeTimeoutError, PeerClosedError, WireReader } from '../broker/wire-reader.js';
import { PacketDecoder } from '../broker/mysql/codec/packet-decoder.js';
import { decodeChangeUser } from '../broker/mysql/codec/commands.js';
import { errorMessage } from '../errors.js';
import { changeUpstreamUser, loginUpstream, openUpstream, upstreamCapabilities, MariaDbRefused, type Upstream } from './mariadb-upstream.js';
import { AadUserTap, type TapAction } from './aaduser-tap.js';
import { findAadPrincipal, runCreateAadUser, type AadPrincipal } from './mysql-aad-users.js';
import * as errors from './mysql-front-errors.js';
import type { RealMariaDb } from './real-mariadb.js';
import type { VerifiedIdentity } from './token-verifier.js';

/**
 * How the front asks for the password. Azure asks for `mysql_clear_password`; 'native' exists so
 * the broker's mysql_native_password answer is tested against a real peer. A scrambled answer does
 * not reveal the token, so for it the front checks the answer against the tokens the emulator issued.
 */
export type MySqlFrontAuthMethod = 'clear' | 'native';

/** authMethod @default 'clear'; issuedTokens are the candidates for a native-password answer. */
export interface MySqlFrontOptions extends FrontOptions<MySqlFrontAuthMethod> {
  realMariaDb: RealMariaDb;
}

export type MySqlFront = FrontHandle<MySqlFrontAuthMethod>;

/** A HandshakeResponse41 with a token and 64 KiB of connection attributes fits easily. */
const MAX_CLIENT_LOGIN_PACKET = 256 * 1024;
/** What the greeting offers on top of MariaDB's capabilities, and what it holds back. */
const FRONT_ADDS = Capability.Ssl | Capability.PluginAuth;
const FRONT_WITHHOLDS = Capability.Compress;

export async function startMySqlFront(options: MySqlFrontOptions): Promise<MySqlFront> {
  const front = new FrontState<MySqlFrontAuthMethod>(options, options.authMethod ?? 'clear');
  const { track } = front;

  const server: Server = createServer((socket) => {
    track(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    handleConnection(socket).catch(() => socket.destroy());
  });

  async function handleConnection(raw: Socket): Promise<void> {
    const deadline = { at: Date.now() + (options.authenticationTimeoutMs ?? 30_000), what: 'the login' };
    const leg = new PacketLeg<Socket>(raw, deadline, MAX_CLIENT_LOGIN_PACKET);
    let upstream: Upstream | undefined;
    try {
      // MariaDB first: the greeting carries its connection id and its server version.
      upstream = await openUpstream(options.realMariaDb, { at: deadline.at, what: 'MariaDB' });
      track(upstream.socket);
      const scramble = createScramble();
      const { greeting } = upstream;
      const offered = ((greeting.capabilities | FRONT_ADDS) & ~FRONT_WITHHOLDS) >>> 0;
      leg.send(
        encodeHandshakeV10({
          ...greeting,
          authPluginData: scramble,
          capabilities: offered,
          authPluginName: AuthPlugin.NativePassword,
        }),
      );
      const response = await startTls(leg);
      const user = mapUser(response.username);
      const token = await receiveToken(leg, response, scramble);
      const principal = await checkToken(token, user, response.username, hostOf(raw.remoteAddress));
      front.logins += 1;
      leg.send(await loginUpstream(upstream, { user, password: principal.internalPassword, client: response }, deadline));
      join(leg, upstream, principal, { capabilities: (response.capabilities & offered) >>> 0, upstreamCapabilities: upstreamCapabilities(response.capabilities), scramble });
    } catch (error) {
      upstream?.socket.destroy();
      // An ERR from MariaDB (before the greeting: "Too many connections") goes to the client as is.
      const err = error instanceof MariaDbRefused ? error.payload : toErrPacket(error);
      if (err === undefined || leg.socket.destroyed) leg.socket.destroy();
      else leg.socket.end(leg.frame(err)); // the last packet, then close
    }
  }

  /** The SSLRequest, the TLS handshake, then the real HandshakeResponse41 over TLS. */
  async function startTls(leg: PacketLeg<Socket>): Promise<HandshakeResponse41> {
    const first = decodeClientHandshake(await leg.receive());
    if (first.type === 'response') throw errors.insecureTransport(options.kind);
    const raw = leg.socket;
    // Clients send their TLS ClientHello right after the SSLRequest, often in the same segment:
    // hand those bytes back, TLSSocket takes a socket's buffered data as received.
    const early = leg.reader.detach();
    if (early.length > 0) raw.unshift(early);
    const tls = new TLSSocket(raw, { isServer: true, secureContext: front.secureContext });
    tls.on('error', () => raw.destroy());
    track(tls);
    leg.switchTo(tls);
    const second = decodeClientHandshake(await leg.receive());
    if (second.type !== 'response') throw new MySqlProtocolError('a second SSLRequest');
    if (!hasCapability(second.capabilities, Capability.PluginAuth)) throw errors.authSwitchUnsupported();
    return second;
  }

  /** The token, as the auth method gets it: in clear, or found by the client's native-password answer. */
  async function receiveToken(leg: PacketLeg<Socket>, response: Pick<HandshakeResponse41, 'authPluginName' | 'authResponse' | 'username'>, scramble: Buffer): Promise<string> {
    const wanted = front.authMethod === 'clear' ? AuthPlugin.ClearPassword : AuthPlugin.NativePassword;
    let answer = response.authResponse;
    if (response.authPluginName !== wanted) {
      // MySQL servers send the scramble with every switch, whatever the plugin.
      leg.send(encodeAuthSwitchRequest({ pluginName: wanted, pluginData: Buffer.concat([scramble, Buffer.from([0])]) }));
      answer = decodeAuthSwitchResponse(await leg.receive());
    }
    const host = hostOf(leg.socket.remoteAddress);
    if (wanted === AuthPlugin.ClearPassword) {
      const token = decodeClearPassword(answer);
      if (token === '') throw errors.accessDenied(response.username, host, false);
      return token;
    }
    if (answer.length === 0) throw errors.accessDenied(response.username, host, false);
    const token = (options.issuedTokens?.() ?? []).find((candidate) => verifyNativePassword(candidate, scramble, answer));
    if (token === undefined) throw errors.accessDenied(response.username, host, true);
    return token;
  }

  function mapUser(user: string): string {
    if (options.kind === 'flexible') return user;
    // Single servers take `user@servername`: the gateway routes by it, before any password.
    const at = user.lastIndexOf('@');
    if (at < 0 || user.slice(at + 1) !== options.serverName) throw errors.serverNameMissing();
    return user.slice(0, at);
  }

  /** Resolves with the principal, whose account the session logs in as. */
  async function checkToken(token: string, user: string, requestedUser: string, host: string): Promise<AadPrincipal> {
    const verdict = await options.verifyToken(token);
    if (!verdict.ok) throw errors.tokenRefused(verdict.reason, requestedUser, host, options.audience);
    const principal = await findAadPrincipal(options.realMariaDb, user);
    if (!principal || !matches(principal, user, verdict.identity)) throw errors.accessDenied(requestedUser, host, true);
    return principal;
  }

  /**
   * Relays both ways; the client's side through the tap, so `CREATE AADUSER` and COM_CHANGE_USER
   * are answered here. `scramble` is the greeting's: a COM_CHANGE_USER answers it.
   */
  function join(leg: PacketLeg<Socket>, upstream: Upstream, principal: AadPrincipal, session: { capabilities: number; upstreamCapabilities: number; scramble: Buffer }): void {
    const { capabilities } = session;
    const client = leg.socket;
    const server = upstream.socket;
    const fromClient = leg.reader.detach();
    const fromServer = upstream.reader.detach();
    const closeBoth = (): void => {
      client.destroy();
      server.destroy();
    };
    client.on('error', closeBoth);
    server.on('error', closeBoth);
    client.on('close', closeBoth);
    server.on('close', closeBoth);
    // A side that went away during the login has emitted its 'close' already.
    if (client.destroyed || server.destroyed) {
      closeBoth();
      return;
    }
    if (fromServer.length > 0) client.write(fromServer);
    server.pipe(client);
    server.resume();

    const tap = new AadUserTap(capabilities);
    const queue: TapAction[] = [];
    let answering = false;
    let draining = false;
    let changing = false;
    const flow = (): void => {
      while (!answering && !draining && queue.length > 0) {
        const action = queue.shift()!;
        if (action.type === 'forward') {
          if (!server.write(action.bytes)) {
            draining = true;
            server.once('drain', () => {
              draining = false;
              flow();
            });
          }
          continue;
        }
        answering = true;
        if (action.type === 'change-user') {
          changing = true;
          void changeUser(action.payload, action.lastSequenceId).then((open) => {
            answering = false;
            changing = false;
            if (open) flow();
          });
          continue;
        }
        runCreateAadUser(options.realMariaDb, action.sql, principal)
          .catch(errPacketOf)
          .then((err) => {
            client.write(encodePacket(action.replySequenceId, err ? encodeErr(err) : encodeOk({ statusFlags: ServerStatus.Autocommit }, capabilities)));
            answering = false;
            flow();
          });
      }
      if (changing) return; // the change reads the client itself
      if (answering || draining) client.pause();
      else client.resume();
    };
    const take = (chunk: Buffer): void => {
      queue.push(...tap.push(chunk));
      flow();
    };
    client.on('data', take);
    if (fromClient.length > 0) take(fromClient);
    else flow();

    /**
     * COM_CHANGE_USER as Azure answers it: the token again (clear password over TLS), checked
     * like at login, then MariaDB changed to the new principal's account. A refusal is an ERR and
     * the connection closes, as MySQL does. Resolves with whether the session goes on.
     */
    async function changeUser(payload: Buffer, lastSequenceId: number): Promise<boolean> {
      const deadline = { at: Date.now() + (options.authenticationTimeoutMs ?? 30_000), what: 'the change of user' };
      client.off('data', take);
      server.off('close', closeBoth);
      server.unpipe(client);
      const clientLeg = new PacketLeg<Socket>(client, deadline, MAX_CLIENT_LOGIN_PACKET);
      clientLeg.last = lastSequenceId;
      upstream.reader = new WireReader(server, new PacketDecoder({ maxPacketLength: MAX_CLIENT_LOGIN_PACKET }));
      let refusal: Buffer | undefined;
      try {
        const request = decodeChangeUser(payload, capabilities);
        const user = mapUser(request.user);
        const token = await receiveToken(clientLeg, { ...request, username: request.user }, session.scramble);
        const next = await checkToken(token, user, request.user, hostOf(client.remoteAddress));
        clientLeg.send(await changeUpstreamUser(upstream, { ...request, user }, next.internalPassword, session.upstreamCapabilities, deadline));
        principal = next;
      } catch (error) {
        refusal = error instanceof MariaDbRefused ? error.payload : toErrPacket(error);
      }
      const fromServer = upstream.reader.detach();
      const rest = clientLeg.reader.detach();
      if (refusal !== undefined || client.destroyed) {
        if (refusal !== undefined && !client.destroyed) client.end(clientLeg.frame(refusal));
        else closeBoth();
        return false;
      }
      server.on('close', closeBoth);
      if (server.destroyed) closeBoth();
      if (fromServer.length > 0) client.write(fromServer);
      server.pipe(client);
      client.on('data', take);
      if (rest.length > 0) queue.push(...tap.push(rest));
      return true;
    }
  }

  return front.listen(server, options);
}

/**
 * A principal made with an id matches a token carrying it as object id or as client (app) id:
 * Azure's docs name the client id for managed identities, the PostgreSQL side the object id.
 * One made for a person (no id) matches a user token with that sign-in name; one made for a group
 * matches its members' tokens.
 */
function matches({ objectId, objectType }: Pick<AadPrincipal, 'objectId' | 'objectType'>, user: string, identity: VerifiedIdentity): boolean {
  if (objectId === null) return identity.type === 'user' && (identity.upn ?? '').toLowerCase() === user.toLowerCase();
  // A group's account is logged in to by its members, with their own tokens naming the group.
  if (objectType === 'group') return identity.groups.some((group) => group.toLowerCase() === objectId);
  return objectId === identity.objectId.toLowerCase() || objectId === identity.appId.toLowerCase();
}

/** The ERR payload for a failed login, or undefined when there is nobody left to tell. */
function toErrPacket(error: unknown): Buffer | undefined {
  if (error instanceof PeerClosedError) return undefined;
  return encodeErr(errPacketOf(error));
}

function errPacketOf(error: unknown): ErrPacket {
  if (error instanceof errors.MySqlLoginRefused) return error.err;
  if (error instanceof HandshakeTimeoutError) return errors.handshakeTimedOut();
  if (error instanceof MySqlProtocolError) return { code: error.errorCode, sqlState: PROTOCOL_ERROR_SQLSTATE, message: error.message };
  return { code: 1105, sqlState: 'HY000', message: `emulator failure: ${errorMessage(error)}` }; // ER_UNKNOWN_ERROR
}
