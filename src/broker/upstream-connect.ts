/**
 * TCP and TLS to an upstream server, shared by the PostgreSQL and MySQL sessions. TLS is always
 * verified against the target's CA and server name unless the config says `insecure`; a failure
 * says which name and which CA, so the user knows what to fix.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { UpstreamTarget } from './target.js';
import { ExternalError } from '../errors.js';

export class UpstreamError extends ExternalError {
  constructor(
    message: string,
    readonly stage: 'connect' | 'tls' | 'auth' | 'token' | 'protocol',
    hint?: string,
  ) {
    super(message, hint === undefined ? {} : { hint });
  }
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export function connectTimeout(target: UpstreamTarget): number {
  return target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
}

export function openTcp(target: UpstreamTarget, signal?: AbortSignal): Promise<Socket> {
  const where = `${target.host}:${target.port}`;
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: target.host, port: target.port, noDelay: true });
    const timer = setTimeout(() => fail(new UpstreamError(
      `timed out connecting to ${target.name} at ${where} after ${connectTimeout(target)} ms`,
      'connect',
      `A firewall may be dropping the connection: check the server's firewall rules allow this machine's IP, then run \`azdb doctor ${target.name}\`.`,
    )), connectTimeout(target));
    const onAbort = () => fail(new UpstreamError('the connection was cancelled', 'connect'));
    signal?.addEventListener('abort', onAbort, { once: true });
    function fail(error: Error): void {
      cleanup();
      socket.destroy();
      reject(error);
    }
    function cleanup(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
    }
    const onError = (error: NodeJS.ErrnoException) =>
      fail(new UpstreamError(`could not connect to ${target.name} at ${where}: ${error.code ?? error.message}`, 'connect',
        `Is the server running and reachable? Run \`azdb doctor ${target.name}\`.`));
    socket.once('error', onError);
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}

/**
 * One SecureContext per CA: given \`ca\` directly, tls.connect builds a new context (and parses
 * the CA into a new store) for every connection, which costs CPU on each login and tens of KB
 * of memory for each open session.
 */
const MAX_CONTEXTS = 32;
const contexts = new Map<string, SecureContext>();

function secureContextFor(ca: string | undefined): SecureContext {
  const key = ca ?? '';
  let context = contexts.get(key);
  if (!context) {
    context = createSecureContext({ ...(ca === undefined ? {} : { ca }), minVersion: 'TLSv1.2' });
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value!);
    contexts.set(key, context);
  }
  return context;
}

/** Starts TLS on an already negotiated socket and waits for a verified handshake. */
export function startTls(socket: Socket, target: UpstreamTarget): Promise<TLSSocket> {
  const { tls } = target;
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({
      socket,
      servername: tls.serverName,
      secureContext: secureContextFor(tls.ca),
      rejectUnauthorized: tls.mode === 'verify-full',
    });
    const timer = setTimeout(() => fail(new UpstreamError(`TLS handshake with ${target.name} timed out`, 'tls')), connectTimeout(target));
    function fail(error: Error): void {
      clearTimeout(timer);
      secure.destroy();
      reject(error);
    }
    secure.once('error', (error: NodeJS.ErrnoException) => {
      fail(new UpstreamError(
        `TLS verification of ${target.name} failed for server name "${tls.serverName}" against ${tls.caSource}: ${error.code ?? ''} ${error.message}`.replace(/\s+/g, ' '),
        'tls',
        `Check tls.server_name and tls.ca_file of "${target.name}" in the config; \`azdb doctor ${target.name}\` shows the certificate the server sends.`,
      ));
    });
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.setNoDelay(true);
      resolve(secure);
    });
  });
}
