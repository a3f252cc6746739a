/**
 * One emulated "Azure Database for PostgreSQL" server: the TLS + Entra-token front that Azure
 * puts before PostgreSQL. Like Azure it refuses unencrypted connections, asks for a cleartext
 * password, accepts only a valid Entra access token (signature, audience, expiry) whose identity
 * matches the role made by `pgaadauth_create_principal*`, and then joins the client to the real
 * server. Cancel requests are passed to the real server, plain or over TLS.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { FrontState, type FrontHandle, type FrontOptions } from './front-server.js';
import { TLSSocket } from 'node:tls';
import { errorMessage } from '../errors.js';
import { FrameDecoder } from '../broker/postgres/codec/frame-decoder.js';
import { randomBytes } from 'node:crypto';
import { md5PasswordAnswer, SCRAM_MECHANISM, ScramServer } from '../broker/postgres/scram.js';
import {
  decodePasswordMessage,
  decodeSaslInitialResponse,
  encodeAuthentication,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  FrontendCode,
  type ErrorFields,
} from '../broker/postgres/codec/messages.js';
import { encodeCancelRequest, encodeStartupMessage, type StartupPacket } from '../broker/postgres/codec/startup.js';
import { WireReader } from '../broker/wire-reader.js';
import type { RealPostgres } from './real-postgres.js';
import type { TokenRejection, VerifiedIdentity } from './token-verifier.js';


/**
 * How the front asks for the password. Azure asks for cleartext; MD5 and SCRAM exist so the
 * broker's answers to them are tested against a real peer. A hashed answer does not reveal the
 * token, so for those the front checks it against the tokens the emulator has issued.
 */
export type FrontAuthMethod = 'cleartext' | 'md5' | 'scram-sha-256';

/** authMethod @default 'cleartext'; issuedTokens are the candidates for MD5 and SCRAM answers. */
export interface PostgresFrontOptions extends FrontOptions<FrontAuthMethod> {
  realPostgres: RealPostgres;
}

export type PostgresFront = FrontHandle<FrontAuthMethod>;

const MAX_PASSWORD_MESSAGE = 64 * 1024;

function loginReader(socket: Socket): WireReader<FrameDecoder> {
  return new WireReader(socket, new FrameDecoder({ maxLength: MAX_PASSWORD_MESSAGE }));
}

class PgLoginRefused extends Error {
  constructor(readonly fields: ErrorFields) {
    super(fields.message);
  }
}

export async function startPostgresFront(options: PostgresFrontOptions): Promise<PostgresFront> {
  const front = new FrontState<FrontAuthMethod>(options, options.authMethod ?? 'cleartext');
  const { track } = front;

  const server: Server = createServer((socket) => {
    track(socket);
    socket.setNoDelay(true);
    handleConnection(socket).catch(() => socket.destroy());
  });

  async function handleConnection(raw: Socket): Promise<void> {
    const deadline = { at: Date.now() + (options.authenticationTimeoutMs ?? 30_000), what: 'the login' };
    let socket: Socket = raw;
    let reader = loginReader(raw);
    let encrypted = false;
    try {
      for (;;) {
        const packet: StartupPacket = await reader.read((decoder) => decoder.nextStartupPacket(), deadline);
        if (packet.type === 'ssl-request' && !encrypted) {
          const early = reader.detach();
          raw.write('S');
          const tls = new TLSSocket(raw, { isServer: true, secureContext: front.secureContext });
          tls.on('error', () => raw.destroy());
          socket = tls;
          track(tls);
          reader = loginReader(tls);
          encrypted = true;
          // PostgreSQL refuses bytes sent before its answer to SSLRequest (CVE-2021-23214): after
          // 'S' and the TLS handshake, over TLS.
          if (early.length > 0) {
            throw new PgLoginRefused({
              severity: 'FATAL',
              code: '08P01',
              message: 'received unencrypted data after SSL request',
              detail: 'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.',
            });
          }
          continue;
        }
        if (packet.type === 'gssenc-request' && !encrypted) {
          raw.write('N');
          continue;
        }
        if (packet.type === 'cancel') {
          options.realPostgres.connectRaw().on('error', () => {}).end(encodeCancelRequest(packet.processId, packet.secretKey));
          socket.end();
          return;
        }
        if (packet.type !== 'startup') throw refusal('08P01', 'invalid startup packet sequence');
        if (!encrypted) {
          throw refusal(
            '28000',
            `no pg_hba.conf entry for host "${raw.remoteAddress}", user "${packet.params.user}", database "${packet.params.database ?? packet.params.user}", no encryption`,
          );
        }
        await login(socket, reader, packet, deadline);
        return;
      }
    } catch (error) {
      const fields = error instanceof PgLoginRefused ? error.fields : { severity: 'FATAL' as const, code: '08P01', message: errorMessage(error) };
      if (!socket.destroyed) socket.end(encodeErrorResponse(fields));
    }
  }

  async function login(
    socket: Socket,
    reader: WireReader<FrameDecoder>,
    startup: Extract<StartupPacket, { type: 'startup' }>,
    deadline: { at: number; what: string },
  ): Promise<void> {
    const requestedUser = startup.params.user ?? '';
    const role = roleFromUser(requestedUser);
    const unsupported = Object.keys(startup.params).filter((name) => name.startsWith('_pq_.'));
    if (startup.minor > 0 || unsupported.length > 0) socket.write(encodeNegotiateProtocolVersion(0, unsupported));

    const token = await receivePassword(socket, reader, requestedUser, deadline);

    const verdict = await options.verifyToken(token);
    if (!verdict.ok) throw tokenRefusal(verdict.reason, requestedUser);
    await checkPrincipal(role, verdict.identity, requestedUser);
    front.logins += 1;

    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(startup.params)) {
      if (!name.startsWith('_pq_.')) params[name] = value;
    }
    params.user = role;
    params.database = startup.params.database || requestedUser;
    const upstream = options.realPostgres.connectRaw();
    upstream.setNoDelay(true);
    track(upstream);
    await new Promise<void>((resolve, reject) => {
      upstream.once('connect', resolve);
      upstream.once('error', reject);
    });
    const early = reader.detach();
    upstream.write(encodeStartupMessage(params));
    if (early.length > 0) upstream.write(early);
    // A client that goes away mid-result must take its backend along: piping alone leaves the
    // upstream paused with PostgreSQL blocked writing to it, holding a connection slot for good.
    const closeBoth = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.on('error', closeBoth);
    socket.on('error', closeBoth);
    upstream.on('close', closeBoth);
    socket.on('close', closeBoth);
    // It may have gone while the upstream connected: its 'close' has been emitted already.
    if (socket.destroyed) {
      closeBoth();
      return;
    }
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
  }

  async function receivePassword(socket: Socket, reader: WireReader<FrameDecoder>, user: string, deadline: { at: number; what: string }): Promise<string> {
    const next = async () => {
      const frame = await reader.read((decoder) => decoder.next(), deadline);
      if (frame.code !== FrontendCode.Password) throw refusal('08P01', 'expected a password response');
      return frame.payload;
    };
    const candidates = () => options.issuedTokens?.() ?? [];
    switch (front.authMethod) {
      case 'cleartext':
        socket.write(encodeAuthentication({ type: 'cleartext' }));
        return decodePasswordMessage(await next());
      case 'md5': {
        const salt = randomBytes(4);
        socket.write(encodeAuthentication({ type: 'md5', salt }));
        const answer = decodePasswordMessage(await next());
        const token = candidates().find((t) => md5PasswordAnswer(t, user, salt) === answer);
        if (!token) throw passwordFailed(user);
        return token;
      }
      case 'scram-sha-256': {
        socket.write(encodeAuthentication({ type: 'sasl', mechanisms: [SCRAM_MECHANISM] }));
        const initial = decodeSaslInitialResponse(await next());
        const scram = new ScramServer('', 4096);
        socket.write(encodeAuthentication({ type: 'sasl-continue', data: scram.first(initial.data) }));
        const clientFinal = await next();
        for (const token of candidates()) {
          const result = scram.final(clientFinal, token);
          if (result.ok) {
            socket.write(encodeAuthentication({ type: 'sasl-final', data: result.serverFinal }));
            return token;
          }
        }
        throw passwordFailed(user);
      }
    }
  }

  function roleFromUser(user: string): string {
    if (options.kind === 'flexible') return user;
    // Single servers take `user@servername`, as Azure Database for PostgreSQL Single Server did.
    const at = user.lastIndexOf('@');
    if (at < 0 || user.slice(at + 1) !== options.serverName) {
      throw refusal('28000', `Invalid Username format. Please use username format <username@${options.serverName}>`);
    }
    return user.slice(0, at);
  }

  async function checkPrincipal(role: string, identity: VerifiedIdentity, requestedUser: string): Promise<void> {
    const { rows } = await options.realPostgres.query<{ object_id: string | null; object_type: string }>(
      'SELECT object_id, object_type FROM pgaadauth.principals WHERE rolname = $1',
      [role],
    );
    const principal = rows[0];
    if (!principal) throw passwordFailed(requestedUser);
    if (principal.object_id === null) {
      // Made by pgaadauth_create_principal: a user, matched by sign-in name.
      if (identity.type === 'app') {
        throw refusal('28000', `Service Principals cannot generate AAD_AUTH_TOKENTYPE_APP_USER tokens for role[${role}]`);
      }
      if ((identity.upn ?? '').toLowerCase() !== role.toLowerCase()) throw passwordFailed(requestedUser);
      return;
    }
    // A group's role is logged in to by its members, each with a token of their own (Azure: the
    // group's name as user name, the member's token carrying the group in `groups`).
    if (principal.object_type === 'group') {
      if (!identity.groups.some((group) => group.toLowerCase() === principal.object_id)) throw passwordFailed(requestedUser);
      return;
    }
    if (principal.object_id !== identity.objectId.toLowerCase()) throw passwordFailed(requestedUser);
  }

  function tokenRefusal(reason: TokenRejection, user: string): PgLoginRefused {
    switch (reason) {
      case 'audience':
        return refusal(
          '28000',
          `The access token does not have a valid audience claim. Please acquire a new token for the resource "${options.audience}".`,
        );
      case 'expired':
        return refusal('28000', 'The access token has expired. Please acquire a new token and try again.');
      case 'not-yet-valid':
        return refusal('28000', 'The access token is not yet valid.');
      default:
        return passwordFailed(user);
    }
  }

  return front.listen(server, options);
}

function refusal(code: string, message: string): PgLoginRefused {
  return new PgLoginRefused({ severity: 'FATAL', code, message });
}

function passwordFailed(user: string): PgLoginRefused {
  return refusal('28P01', `password authentication failed for user "${user}"`);
}
