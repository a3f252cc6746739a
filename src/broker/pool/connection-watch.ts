/**
 * What every pooled server connection needs, whatever its protocol: to be marked broken once its
 * socket closes or errors (reported once), and, while it waits idle in the pool, to notice that
 * the server sent something nobody asked for (an error or FATAL before it goes away).
 */
import type { Socket } from 'node:net';

export interface WatchedConnection {
  readonly socket: Socket;
  broken: boolean;
}

/** Marks `connection` broken when its socket closes or errors; `onBroken` runs once. */
export function watchBroken<C extends WatchedConnection>(connection: C, onBroken: (connection: C) => void): C {
  let reported = false;
  const broke = (): void => {
    connection.broken = true;
    if (reported) return;
    reported = true;
    onBroken(connection);
  };
  connection.socket.on('error', broke);
  connection.socket.on('close', broke);
  return connection;
}

/** While idle, any byte from the server makes the connection unusable; returns the unwatch. */
export function watchIdle(connection: WatchedConnection, onBroken: () => void): () => void {
  const unsolicited = (): void => {
    connection.broken = true;
    onBroken();
  };
  connection.socket.on('data', unsolicited);
  connection.socket.resume();
  return () => {
    connection.socket.off('data', unsolicited);
    connection.socket.pause();
  };
}
