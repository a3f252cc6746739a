/**
 * Reads protocol units from a socket during a handshake: queues `data` chunks and feeds them to
 * the protocol's streaming decoder (the codec's FrameDecoder or PacketDecoder) until it yields
 * what the caller asks for. After the handshake, `detach()` returns the bytes read past the last
 * unit, exactly as they came, so the caller can pipe the socket raw.
 */
import type { Duplex } from 'node:stream';

/** A protocol's streaming decoder, as far as a reader needs it. */
export interface StreamDecoder {
  /** Takes the next chunk; called only once the decoder has used up the previous one. */
  push(chunk: Buffer): void;
  /** The bytes pushed and not yet returned, as they came; the decoder is empty afterwards. */
  rest(): Buffer;
}

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

const EMPTY = Buffer.alloc(0);

export class WireReader<D extends StreamDecoder> {
  /** Chunks the decoder has not been given yet. */
  private readonly chunks: Buffer[] = [];
  private closed: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    // Nobody is waiting for bytes (the owner is busy, e.g. logging in upstream): stop reading
    // until the next `read`, so a peer cannot grow the queue without bound meanwhile.
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

  /** Let go at detach: a relayed session keeps its login's reader, not the decoder's state. */
  private decoder: D | undefined;

  constructor(
    private readonly socket: Duplex,
    decoder: D,
  ) {
    this.decoder = decoder;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /**
   * Waits until `take` gets a value from the decoder (undefined: it needs more bytes); throws
   * PeerClosedError, a socket error, a timeout, or the decoder's protocol error.
   */
  async read<T>(take: (decoder: D) => T | undefined, deadline?: { at: number; what: string }): Promise<T> {
    const decoder = this.decoder;
    if (!decoder) throw new Error('WireReader: read after detach');
    for (;;) {
      const value = take(decoder);
      if (value !== undefined) return value;
      const chunk = this.chunks.shift();
      if (chunk) {
        decoder.push(chunk);
        continue;
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
    const rest = this.decoder?.rest() ?? EMPTY;
    this.decoder = undefined;
    const queued = this.chunks.splice(0);
    return queued.length === 0 ? rest : Buffer.concat([rest, ...queued]);
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
