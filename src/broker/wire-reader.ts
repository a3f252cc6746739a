/**
 * Reads protocol units from a socket during a handshake: buffers `data` events and hands the
 * buffer to a pure parse function until it yields a value. After the handshake, `detach()`
 * returns any bytes read past the last unit so the caller can pipe the socket raw.
 */
import type { Duplex } from 'node:stream';

export type ParseStep<T> = (buffer: Buffer) => { value: T; rest: Buffer } | undefined;

export class PeerClosedError extends Error {
  constructor(message = 'the peer closed the connection') {
    super(message);
    this.name = 'PeerClosedError';
  }
}

export class HandshakeTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandshakeTimeoutError';
  }
}

export class WireReader {
  private buffer: Buffer = Buffer.alloc(0);
  private closed: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    // Nobody is waiting for bytes (the owner is busy, e.g. logging in upstream): stop reading
    // until the next `read`, so a peer cannot grow the buffer without bound meanwhile.
    if (!this.wake) this.socket.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.closed ??= new PeerClosedError();
    this.notify();
  };
  private readonly onError = (error: Error): void => {
    this.closed ??= error;
    this.notify();
  };

  constructor(private readonly socket: Duplex) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Waits until `parse` yields a value; throws PeerClosedError, a socket error or a timeout. */
  async read<T>(parse: ParseStep<T>, deadline?: { at: number; what: string }): Promise<T> {
    for (;;) {
      if (this.buffer.length > 0) {
        const step = parse(this.buffer);
        if (step) {
          this.buffer = step.rest;
          return step.value;
        }
      }
      if (this.closed) throw this.closed;
      this.socket.resume();
      await this.waitForData(deadline);
    }
  }

  /** Stops reading; returns unread bytes. The socket is left paused for the next owner. */
  detach(): Buffer {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private waitForData(deadline?: { at: number; what: string }): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (deadline) {
        const remaining = deadline.at - Date.now();
        if (remaining <= 0) {
          reject(new HandshakeTimeoutError(`timed out waiting for ${deadline.what}`));
          return;
        }
        timer = setTimeout(() => {
          this.wake = undefined;
          reject(new HandshakeTimeoutError(`timed out waiting for ${deadline.what}`));
        }, remaining);
      }
      this.wake = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });
  }
}
