/**
 * Connection ids azdb greets MySQL clients with, before any server connection exists: minted
 * here, unique in the process, in the upper half of the 32-bit range where servers' own thread
 * ids (counted up from 1) practically never reach, so a `KILL <server id>` is never mistaken for
 * one. Once a session logged in upstream it binds its minted id to the server's thread id, and a
 * `KILL [QUERY|CONNECTION] <minted id>` (mysql's Ctrl+C, on a new connection) is translated.
 */
import type { UpstreamTarget } from '../target.js';

const FIRST = 0x8000_0000;
const SPAN = 0x8000_0000;

interface Entry {
  /** The server the session logged in to (host:port): a KILL is translated only on its connections. */
  server: string;
  threadId: number | undefined;
}

export class MySqlConnectionIds {
  private readonly entries = new Map<number, Entry>();
  private next = 0;

  mint(server: string): number {
    let id: number;
    do {
      id = FIRST + (this.next++ % SPAN);
    } while (this.entries.has(id));
    this.entries.set(id, { server, threadId: undefined });
    return id;
  }

  bind(id: number, threadId: number): void {
    const entry = this.entries.get(id);
    if (entry) entry.threadId = threadId;
  }

  /** The session holds no server connection now (a transaction pool's client between transactions). */
  unbind(id: number): void {
    const entry = this.entries.get(id);
    if (entry) entry.threadId = undefined;
  }

  release(id: number): void {
    this.entries.delete(id);
  }

  /** The server thread behind a minted id, for a connection to `server`; undefined otherwise. */
  threadOf(id: number, server: string): number | undefined {
    const entry = this.entries.get(id);
    return entry?.server === server ? entry.threadId : undefined;
  }
}

/** A server as ids and greetings are kept for it: its address. */
export const serverKey = (target: Pick<UpstreamTarget, 'host' | 'port'>): string => `${target.host}:${target.port}`;

/** The process's ids: one broker process, one id space, whatever the tunnel or listener. */
export const connectionIds = new MySqlConnectionIds();
