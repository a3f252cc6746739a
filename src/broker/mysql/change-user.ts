/**
 * COM_CHANGE_USER on a relayed session, as Azure would see it: the client proves the tunnel
 * password again (against azdb's greeting scramble, as at its login), azdb checks the new user and
 * database against the roles, then changes the upstream session to the mapped user with a token.
 * A refusal by azdb is an ERR and the session goes on as before; the server's own refusal is its
 * ERR, and the server closes the connection after it, as MySQL and MariaDB do.
 *
 * While it runs, the session hands the client's bytes to `push` (the command gate is stopped) and
 * the upstream's bytes are read here instead of piped to the client.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SessionIdentity } from '../audit.js';
import type { SessionOptions } from '../session-record.js';
import { upstreamLoginUser } from '../target.js';
import { authenticateClient } from './client-login.js';
import { decodeChangeUser } from './codec/commands.js';
import type { HandshakeV10 } from './codec/handshake.js';
import { encodeErr } from './codec/responses.js';
import { PacketLeg } from './packet-leg.js';
import { MySqlClientError, changeUserNotForPeople, changeUserTooLong, clientFailure, deniedByRoles, hostOf, tokenUnavailable, upstreamFailure, upstreamRefused } from './session-errors.js';
import { MySqlUpstreamRefused, changeUserUpstream } from './upstream.js';

export interface ChangeUserContext {
  client: Socket;
  upstream: TLSSocket;
  /** The upstream's greeting: its scramble answers the change's first auth round. */
  upstreamGreeting: HandshakeV10;
  /** The capabilities azdb logged in upstream with. */
  upstreamCapabilities: number;
  /** azdb's greeting scramble: the client answers the change with it. */
  scramble: Buffer;
  /** The capabilities the client and azdb agreed on. */
  capabilities: number;
  options: SessionOptions;
  /** Updated to the new user and database once the server accepted them. */
  identity: SessionIdentity;
  /**
   * Stops relaying the upstream's bytes to the client while the change reads them (a transaction
   * pool attaches a server connection first); resolves with how to go on.
   */
  holdUpstream(): Promise<() => void>;
}

interface ChangeUserOutcome {
  /** Client bytes that came after the change: gate them as usual. */
  rest: Buffer;
  /** The session cannot go on (the server refused or broke off); its ERR, if any, is sent. */
  fatal?: string;
}

/** Answering takes at most this long: the client's auth switch reply, the token, the server. */
const CHANGE_TIMEOUT_MS = 30_000;
const MAX_CLIENT_PACKET = 256 * 1024;

/** The client's side of a change: bytes pushed in by the session, replies written to the client. */
export class ClientInbox extends Duplex {
  constructor(private readonly client: Socket) {
    super();
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.client.write(chunk);
    done();
  }
}

export async function changeUser(context: ChangeUserContext, inbox: ClientInbox, packet: { payload: Buffer; length: number; lastSequenceId: number }): Promise<ChangeUserOutcome> {
  const { client, options, identity } = context;
  const leg = new PacketLeg(inbox, { at: Date.now() + CHANGE_TIMEOUT_MS, what: 'the client to change the user' }, MAX_CLIENT_PACKET);
  leg.last = packet.lastSequenceId;
  let fatal: string | undefined;
  try {
    fatal = await answer(context, leg, packet);
  } catch (error) {
    const err = clientFailure(error);
    if (err) leg.send(encodeErr(err.err));
    fatal = err?.message ?? String(error);
  }
  return { rest: leg.reader.detach(), ...(fatal === undefined ? {} : { fatal }) };

  async function answer(context: ChangeUserContext, leg: PacketLeg, change: typeof packet): Promise<string | undefined> {
    if (change.length > change.payload.length) {
      leg.send(encodeErr(changeUserTooLong(change.length).err));
      return undefined;
    }
    const request = decodeChangeUser(change.payload, context.capabilities);
    const dbUser = request.user || options.defaults.dbUser || '';
    const dbName = request.database || options.defaults.dbName || '';
    const host = hostOf(client.remoteAddress);
    if (options.entra) {
      // The session is the person who signed in; another identity means another connection.
      leg.send(encodeErr(changeUserNotForPeople(dbUser, host).err));
      return undefined;
    }
    try {
      await authenticateClient(leg, { ...request, username: request.user, capabilities: context.capabilities }, context.scramble, options.localPassword, host);
      const decision = options.authorize(dbUser, dbName);
      if (!decision.allowed) throw deniedByRoles(dbUser, dbName, options.target, decision.reason);
    } catch (error) {
      // azdb's own refusal: nothing reached the server, the session goes on as it was.
      if (!(error instanceof MySqlClientError)) throw error;
      leg.send(encodeErr(error.err));
      return undefined;
    }
    const token = await options.getToken().catch((error: unknown) => {
      throw tokenUnavailable(options.target, error);
    });
    const loginUser = upstreamLoginUser(options.target, dbUser);
    const resume = await context.holdUpstream();
    const { upstream } = context;
    try {
      const target = options.target;
      const changed = await changeUserUpstream(
        upstream,
        context.upstreamGreeting,
        target,
        { user: loginUser, database: dbName, characterSet: request.characterSet, connectAttributes: request.connectAttributes },
        token,
        context.upstreamCapabilities,
      ).catch((error: unknown) => {
        if (error instanceof MySqlUpstreamRefused) return upstreamRefused(error.err, target, loginUser);
        throw upstreamFailure(error, target);
      });
      if (changed instanceof MySqlClientError) {
        // The server closes the connection after refusing a change; the relay ends with it.
        leg.send(encodeErr(changed.err));
        return undefined;
      }
      leg.send(changed.ok);
      if (changed.rest.length > 0) client.write(changed.rest);
      identity.db_user = dbUser;
      identity.db_name = dbName;
      return undefined;
    } finally {
      resume();
    }
  }
}
