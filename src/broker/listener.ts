/**
 * A TCP listener for broker sessions: tracks open connections, caps them, and on close stops
 * accepting and lets sessions drain up to a deadline before cutting them.
 */
import { createServer, type Server, type Socket } from 'node:net';

/**
 * TCP keepalive on every client socket after this long without traffic (as PgBouncer's
 * tcp_keepalive): a client that vanished (a laptop asleep, a NAT that forgot it) is noticed and
 * its session, with its server connection, is ended instead of held forever.
 */
export const CLIENT_KEEPALIVE_MS = 60_000;

export interface ListenerOptions {
  host: string;
  port: number;
  /** Runs one client connection to its end; must not throw (it owns its errors). */
  handle: (socket: Socket) => Promise<void>;
  maxConnections?: number;
  /** Errors accepting a connection (EMFILE when out of file descriptors); the listener keeps going. */
  onError?: (error: Error) => void;
}

export interface Listener {
  host: string;
  port: number;
  readonly connections: number;
  /** Stops accepting; waits for open sessions up to `drainMs`, then destroys the rest. */
  close(drainMs?: number): Promise<void>;
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const open = new Set<Socket>();
  const idle: Array<() => void> = [];
  const server: Server = createServer({ noDelay: true }, (socket) => {
    if (options.maxConnections !== undefined && open.size >= options.maxConnections) {
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.on('error', ignoreError);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, CLIENT_KEEPALIVE_MS);
    options.handle(socket).finally(() => {
      socket.destroy();
      open.delete(socket);
      if (open.size === 0) idle.splice(0).forEach((f) => f());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      // Without a listener, a failed accept would be thrown as an uncaught 'error' and take the
      // whole broker down.
      server.on('error', options.onError ?? (() => {}));
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
  return {
    host: address.address,
    port: address.port,
    get connections() {
      return open.size;
    },
    async close(drainMs = 0) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (open.size > 0 && drainMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainMs);
          idle.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      for (const socket of open) socket.destroy();
      await closed;
    },
  };
}

/** One listener for every socket (a per-socket closure would be kept for each idle client). */
function ignoreError(): void {}
