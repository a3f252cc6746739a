/**
 * Logs in to an Azure PostgreSQL server: TCP, SSLRequest (TLS required: an 'N' ends it before
 * any password exists on the wire), verified TLS, StartupMessage, then the server's
 * authentication request answered with the Entra token (cleartext, MD5 or SCRAM-SHA-256).
 * Returns the TLS socket positioned after ReadyForQuery and the greeting to replay to the client.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { UpstreamError, openTcp, startTls } from '../upstream-connect.js';
import type { UpstreamTarget } from '../target.js';
import { WireReader } from '../wire-reader.js';
import { FrameDecoder } from './codec/frame-decoder.js';
import type { Frame } from './codec/frames.js';
import {
  BackendCode,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeErrorFields,
  encodePasswordMessage,
  encodeSaslInitialResponse,
  encodeSaslResponse,
} from './codec/messages.js';
import { md5PasswordAnswer, SCRAM_MECHANISM, ScramClient } from './scram.js';
import { encodeSslRequest, encodeStartupMessage } from './codec/startup.js';

export interface UpstreamLogin {
  user: string;
  database: string;
  /** Other startup parameters from the client (application_name, client_encoding, options...). */
  params: Record<string, string>;
}

export interface UpstreamSession {
  socket: TLSSocket;
  backendKey: { processId: number; secretKey: Buffer } | undefined;
  /** AuthenticationOk … ReadyForQuery as the server sent them, without BackendKeyData. */
  greeting: Buffer[];
  /** Bytes the server sent after ReadyForQuery (normally none). */
  rest: Buffer;
}

/** The server answered with an ErrorResponse: its fields reach the client unchanged. */
export class PgUpstreamRefused extends Error {
  constructor(readonly fields: Record<string, string>, readonly frame: Buffer) {
    super(fields.M ?? 'the server refused the login');
    this.name = 'PgUpstreamRefused';
  }
}

const MAX_UPSTREAM_HANDSHAKE_MESSAGE = 1024 * 1024;

function handshakeReader(socket: Socket): WireReader<FrameDecoder> {
  return new WireReader(socket, new FrameDecoder({ maxLength: MAX_UPSTREAM_HANDSHAKE_MESSAGE }));
}

export async function loginUpstream(target: UpstreamTarget, login: UpstreamLogin, token: string, signal?: AbortSignal): Promise<UpstreamSession> {
  const tcp = await openTcp(target, signal);
  let reader = handshakeReader(tcp);
  const deadline = { at: Date.now() + (target.connectTimeoutMs ?? 10_000) * 3, what: `the login to ${target.name}` };
  try {
    tcp.write(encodeSslRequest());
    const answer = await reader.read((decoder) => decoder.nextByte(), deadline);
    if (answer !== 0x53 /* S */) {
      throw new UpstreamError(
        `${target.name} at ${target.host}:${target.port} refused TLS (answered ${answer === 0x4e ? "'N'" : `0x${answer.toString(16)}`}); azdb never sends a token without TLS`,
        'tls',
        'Azure Database servers always accept TLS: check the host and port point at the Azure server, not at a plain PostgreSQL.',
      );
    }
    reader.detach();
    const socket = await startTls(tcp, target);
    reader = handshakeReader(socket);
    socket.write(encodeStartupMessage({ ...login.params, user: login.user, database: login.database }));
    const session = await authenticate(socket, reader, target, login, token, deadline);
    return session;
  } catch (error) {
    reader.detach();
    tcp.destroy();
    throw error;
  }
}

async function authenticate(
  socket: TLSSocket,
  reader: WireReader<FrameDecoder>,
  target: UpstreamTarget,
  login: UpstreamLogin,
  token: string,
  deadline: { at: number; what: string },
): Promise<UpstreamSession> {
  const next = (): Promise<Frame> => reader.read((decoder) => decoder.next(), deadline);
  let scram: ScramClient | undefined;
  for (;;) {
    const frame = await next();
    if (frame.code === BackendCode.ErrorResponse) throw refused(frame);
    if (frame.code === BackendCode.NegotiateProtocolVersion || frame.code === BackendCode.NoticeResponse) continue;
    if (frame.code !== BackendCode.Authentication) {
      throw new UpstreamError(`${target.name} sent an unexpected message during login`, 'protocol');
    }
    const request = decodeAuthentication(frame.payload);
    switch (request.type) {
      case 'cleartext':
        socket.write(encodePasswordMessage(token));
        break;
      case 'md5':
        socket.write(encodePasswordMessage(md5PasswordAnswer(token, login.user, request.salt)));
        break;
      case 'sasl':
        if (!request.mechanisms.includes(SCRAM_MECHANISM)) {
          throw new UpstreamError(`${target.name} offers only SASL mechanisms azdb does not support: ${request.mechanisms.join(', ')}`, 'auth');
        }
        scram = new ScramClient(token);
        socket.write(encodeSaslInitialResponse(SCRAM_MECHANISM, scram.first()));
        break;
      case 'sasl-continue':
        if (!scram) throw new UpstreamError(`${target.name} continued a SASL exchange that was not started`, 'protocol');
        socket.write(encodeSaslResponse(scram.final(request.data)));
        break;
      case 'sasl-final':
        if (!scram) throw new UpstreamError(`${target.name} finished a SASL exchange that was not started`, 'protocol');
        scram.verifyFinal(request.data);
        break;
      case 'ok':
        return afterAuthentication(socket, reader, next, frame);
      case 'unsupported':
        throw new UpstreamError(
          `${target.name} asks for an authentication method azdb cannot answer with a token (code ${request.code})`,
          'auth',
          'Azure Database servers ask for a cleartext password over TLS; check the target is an Azure server with Entra authentication enabled.',
        );
    }
  }
}

async function afterAuthentication(socket: TLSSocket, reader: WireReader<FrameDecoder>, next: () => Promise<Frame>, ok: Frame): Promise<UpstreamSession> {
  const greeting: Buffer[] = [frameBytes(ok)];
  let backendKey: UpstreamSession['backendKey'];
  for (;;) {
    const frame = await next();
    if (frame.code === BackendCode.ErrorResponse) throw refused(frame);
    if (frame.code === BackendCode.BackendKeyData) {
      backendKey = decodeBackendKeyData(frame.payload);
      continue;
    }
    greeting.push(frameBytes(frame));
    if (frame.code === BackendCode.ReadyForQuery) {
      return { socket, backendKey, greeting, rest: reader.detach() };
    }
  }
}

function frameBytes(frame: Frame): Buffer {
  const bytes = Buffer.allocUnsafe(5 + frame.payload.length);
  bytes[0] = frame.code;
  bytes.writeInt32BE(4 + frame.payload.length, 1);
  frame.payload.copy(bytes, 5);
  return bytes;
}

function refused(frame: Frame): PgUpstreamRefused {
  return new PgUpstreamRefused(decodeErrorFields(frame.payload), frameBytes(frame));
}
