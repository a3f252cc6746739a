/**
 * What a pooled relay must know to hand a server connection back: whether the server is waiting
 * for the next query (every Query, Sync and FunctionCall the client sent has had its
 * ReadyForQuery, and no extended-protocol message waits for a Sync), in which transaction state
 * (ReadyForQuery's I, T or E), and the server's current ParameterStatus values. Both streams are
 * framed on the side with the codec's FrameDecoder; only ReadyForQuery and ParameterStatus
 * payloads are read, everything else is skipped by length. The client's Terminate is cut from
 * its stream: it ends the client's session, not the server connection. Pure: no sockets.
 */
import { FrameDecoder } from '../codec/frame-decoder.js';
import { HEADER_LENGTH } from '../codec/frames.js';
import { BackendCode, FrontendCode, decodeParameterStatus } from '../codec/messages.js';

const SYNC = 0x53; // S
const SERVER_HEAD_LENGTH = 4096;
const FUNCTION_CALL = 0x46; // F
/** Extended-protocol messages whose results wait for a Sync: Parse, Bind, Execute, Describe, Close, Flush. */
const EXTENDED: ReadonlySet<number> = new Set([FrontendCode.Parse, FrontendCode.Bind, FrontendCode.Execute, 0x44, 0x43, 0x48]);

export type TransactionStatus = 'I' | 'T' | 'E';

export class SessionTracker {
  /** ReadyForQuery messages the server still owes. */
  private owed = 0;
  private unsynced = false;
  /** The client's stream broke a frame where the tracker could not follow (a Terminate split across chunks). */
  private lost = false;
  private status: TransactionStatus = 'I';
  terminated = false;
  private readonly client = new FrameDecoder({ headLength: 0 });
  // Every server message comes out (to count its bytes), cut to a head long enough for a ParameterStatus.
  private readonly server = new FrameDecoder({ headLength: SERVER_HEAD_LENGTH });
  /** Bytes of whole messages framed so far and bytes pushed so far, each way: unequal while a message is half there. */
  private clientFramed = 0;
  private clientPushed = 0;
  private serverFramed = 0;
  private serverPushed = 0;

  /** The connection's parameters, kept up to date; another connection's when the tracker moves to it. */
  constructor(public parameters: Map<string, string>) {}

  /** The client's bytes to forward: `chunk`, or the part before its Terminate (nothing after it). */
  fromClient(chunk: Buffer): Buffer {
    if (this.terminated) return chunk.subarray(0, 0);
    const chunkStart = this.clientPushed;
    this.clientPushed += chunk.length;
    this.client.push(chunk);
    for (let frame = this.client.next(); frame; frame = this.client.next()) {
      const start = this.clientFramed;
      this.clientFramed += HEADER_LENGTH + frame.length;
      if (frame.code === FrontendCode.Terminate) {
        this.terminated = true;
        if (start < chunkStart) this.lost = true;
        return chunk.subarray(0, Math.max(0, start - chunkStart));
      }
      if (frame.code === FrontendCode.Query || frame.code === SYNC || frame.code === FUNCTION_CALL) this.owed++;
      if (frame.code === SYNC) this.unsynced = false;
      else if (EXTENDED.has(frame.code)) this.unsynced = true;
    }
    return chunk;
  }

  fromServer(chunk: Buffer): void {
    this.serverPushed += chunk.length;
    this.server.push(chunk);
    for (let frame = this.server.next(); frame; frame = this.server.next()) {
      this.serverFramed += HEADER_LENGTH + frame.length;
      if (frame.code === BackendCode.ReadyForQuery) {
        this.owed = Math.max(0, this.owed - 1);
        this.status = String.fromCharCode(frame.payload[0] ?? 0x49) as TransactionStatus;
      } else if (frame.code === BackendCode.ParameterStatus && frame.payload.length === frame.length) {
        const status = decodeParameterStatus(frame.payload);
        if (status) this.parameters.set(status.name, status.value);
      }
    }
  }

  /**
   * The server's transaction status when it waits for the next query with nothing half-sent or
   * half-answered; undefined when it is in the middle of something (a query, COPY, an unsynced
   * extended exchange), so that the connection cannot be reset safely.
   */
  idleStatus(): TransactionStatus | undefined {
    const whole = this.clientFramed === this.clientPushed && this.serverFramed === this.serverPushed;
    return this.owed === 0 && !this.unsynced && !this.lost && whole ? this.status : undefined;
  }
}
