/**
 * The TCP side every emulated database front shares: listen on loopback (any free port unless
 * told), and on close destroy the connections it tracks before the server stops.
 */
import type { Server, Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TokenVerifier } from './token-verifier.js';

/** Starts `server` (@default 127.0.0.1, any free port) and gives the address it listens on. */
export async function listenFront(server: Server, options: { host?: string | undefined; port?: number | undefined }): Promise<{ host: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('front has no TCP address');
  return { host: address.address, port: address.port };
}

/** The connections of a front, each forgotten when it closes, so close() can end those still open. */
export function socketTracker(): { sockets: ReadonlySet<Socket>; track(socket: Socket): void } {
  const sockets = new Set<Socket>();
  return {
    sockets,
    track(socket) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    },
  };
}

/** Destroys `sockets` and resolves once `server` has closed. */
export function closeFront(server: Server, sockets: ReadonlySet<Socket>): Promise<void> {
  return new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  });
}

/** What every emulated database front is started with; `M` is how it asks for the password. */
export interface FrontOptions<M extends string> {
  serverName: string;
  kind: 'flexible' | 'single';
  /** The audience Azure expects, quoted back in its error message. */
  audience: string;
  certPem: string;
  keyPem: string;
  verifyToken: TokenVerifier;
  host?: string;
  port?: number;
  /** Time allowed from connect to a finished login. @default 30_000 */
  authenticationTimeoutMs?: number;
  authMethod?: M;
  /** Tokens the emulator issued, newest first: candidates for hashed password answers. */
  issuedTokens?: () => readonly string[];
}

/** What a running front offers its owner (the emulator, and tests that inject failures). */
export interface FrontHandle<M extends string> {
  host: string;
  port: number;
  /** Swaps the certificate (tests: expired or wrong-name certificates). */
  setCertificate(certPem: string, keyPem: string): void;
  setAuthMethod(method: M): void;
  /** Logins that passed token validation. */
  readonly logins: number;
  close(): Promise<void>;
}

/** The state a front's connections read (certificate, auth method) and count into (logins). */
export class FrontState<M extends string> {
  secureContext: SecureContext;
  logins = 0;
  private readonly tracker = socketTracker();
  readonly track = this.tracker.track;

  constructor(
    cert: { certPem: string; keyPem: string },
    public authMethod: M,
  ) {
    this.secureContext = createSecureContext({ cert: cert.certPem, key: cert.keyPem });
  }

  /** Listens (see {@link listenFront}) and gives the handle over this state. */
  async listen(server: Server, options: { host?: string | undefined; port?: number | undefined }): Promise<FrontHandle<M>> {
    const address = await listenFront(server, options);
    const state = this;
    return {
      ...address,
      setCertificate(certPem, keyPem) {
        state.secureContext = createSecureContext({ cert: certPem, key: keyPem });
      },
      setAuthMethod(method) {
        state.authMethod = method;
      },
      get logins() {
        return state.logins;
      },
      close: () => closeFront(server, state.tracker.sockets),
    };
  }
}
