/**
 * The TLS handshake as the broker does it (PostgreSQL: SSLRequest then TLS; MySQL: the server's
 * greeting, CLIENT_SSL, SSLRequest then TLS), but without rejecting the certificate during the
 * handshake, so the doctor can say what exactly is wrong with it: chain, name or dates.
 */
import type { Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { FrameDecoder } from '../broker/postgres/codec/frame-decoder.js';
import { encodeSslRequest as encodePostgresSslRequest } from '../broker/postgres/codec/startup.js';
import { Capability, CharacterSet, hasCapability } from '../broker/mysql/codec/constants.js';
import { decodeHandshakeV10, encodeSslRequest as encodeMySqlSslRequest } from '../broker/mysql/codec/handshake.js';
import { PacketLeg } from '../broker/mysql/packet-leg.js';
import { decodeErr, ResponseHeader } from '../broker/mysql/codec/responses.js';
import { WireReader } from '../broker/wire-reader.js';
import type { UpstreamTarget } from '../broker/target.js';
import { ExternalError } from '../errors.js';

export interface CertificateReport {
  tlsVersion: string;
  subject: string;
  altNames: string[];
  issuer: string;
  validFrom: Date;
  validTo: Date;
  /** OpenSSL's verdict on the chain (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …), if it failed. */
  chainError: string | undefined;
  /** Why the certificate does not carry the expected name, if it does not. */
  nameError: string | undefined;
  /** For MySQL: the server's version from its greeting. */
  serverVersion?: string;
}

/** A server that answered, but not with TLS: the detail says what it did. */
export class NoTlsOffered extends ExternalError {}

const MAX_GREETING = 256 * 1024;

/** Negotiates TLS on a connected socket and reports the certificate; destroys the socket after. */
export async function probeTls(socket: Socket, target: UpstreamTarget, signal: AbortSignal): Promise<CertificateReport> {
  const onAbort = () => socket.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const serverVersion = target.protocol === 'mysql' ? await mysqlStartTls(socket) : await postgresStartTls(socket);
    const secure = await handshake(socket, target);
    try {
      return { ...describe(secure, target), ...(serverVersion ? { serverVersion } : {}) };
    } finally {
      secure.destroy();
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    socket.destroy();
  }
}

async function postgresStartTls(socket: Socket): Promise<undefined> {
  const reader = new WireReader(socket, new FrameDecoder());
  socket.write(encodePostgresSslRequest());
  const answer = await reader.read((decoder) => decoder.nextByte());
  reader.detach();
  if (answer !== 0x53 /* S */) {
    throw new NoTlsOffered(answer === 0x4e ? "the server answered the SSLRequest with 'N' (no TLS): not an Azure server" : `the server answered the SSLRequest with 0x${answer.toString(16)}: not PostgreSQL`);
  }
  return undefined;
}

async function mysqlStartTls(socket: Socket): Promise<string> {
  // The check's time limit is what bounds the wait; this deadline only has to be later.
  const leg = new PacketLeg(socket, { at: Date.now() + 60_000, what: 'the greeting' }, MAX_GREETING);
  const payload = await leg.receive();
  if (payload[0] === ResponseHeader.Err) {
    leg.reader.detach();
    throw new NoTlsOffered(`the server sent an error instead of a greeting: ${decodeErr(payload).message}`);
  }
  const greeting = decodeHandshakeV10(payload);
  if (!hasCapability(greeting.capabilities, Capability.Ssl)) {
    leg.reader.detach();
    throw new NoTlsOffered(`the server (${greeting.serverVersion}) does not offer TLS (no CLIENT_SSL in its greeting): not an Azure server`);
  }
  const capabilities = Capability.Protocol41 | Capability.SecureConnection | Capability.LongPassword | Capability.Ssl;
  leg.send(encodeMySqlSslRequest({ capabilities, maxPacketSize: 16 * 1024 * 1024, characterSet: CharacterSet.Utf8mb4GeneralCi, mariadbCapabilities: 0 }));
  leg.reader.detach();
  return greeting.serverVersion;
}

function handshake(socket: Socket, target: UpstreamTarget): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({
      socket,
      servername: target.tls.serverName,
      ...(target.tls.ca ? { ca: target.tls.ca } : {}),
      minVersion: 'TLSv1.2',
      // Verified below, so the report can say what is wrong rather than just "failed".
      rejectUnauthorized: false,
    });
    secure.once('error', (error) => {
      secure.destroy();
      reject(error);
    });
    secure.once('secureConnect', () => resolve(secure));
  });
}

function describe(secure: TLSSocket, target: UpstreamTarget): Omit<CertificateReport, 'serverVersion'> {
  const cert: PeerCertificate = secure.getPeerCertificate(false);
  const altNames = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''));
  const identity = checkServerIdentity(target.tls.serverName, cert);
  const chainError = secure.authorized ? undefined : String(secure.authorizationError ?? 'not authorized');
  return {
    tlsVersion: secure.getProtocol() ?? 'TLS',
    subject: cert.subject?.CN ? String(cert.subject.CN) : '',
    altNames,
    issuer: cert.issuer?.CN ? String(cert.issuer.CN) : cert.issuer?.O ? String(cert.issuer.O) : '',
    validFrom: new Date(cert.valid_from),
    validTo: new Date(cert.valid_to),
    chainError,
    nameError: identity ? identity.message : undefined,
  };
}
