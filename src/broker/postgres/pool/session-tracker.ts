/**
 * What a pooled relay must know to hand a server connection back: whether the server is waiting
 * for the next query (every Query, Sync and FunctionCall the client sent has had its
 * ReadyForQuery, and no extended-protocol message waits for a Sync), in which transaction state
 * (ReadyForQuery's I, T or E), and the server's current ParameterStatus values. Both streams are
 * framed on the side with the codec's FrameDecoder; only ReadyForQuery and ParameterStatus
 * payloads are read, everything else is skipped by length. The client's Terminate is cut from
 * its stream: it ends the client's session, not the server connection. A relay that frames a
 * stream itself (the transaction relay: ClientStream, ReplyFilter) tells the tracker its
 * messages instead of its bytes (clientMessage, serverBytes + serverMessage), so that no stream
 * is framed twice. Pure: no sockets.
 */
import { FrameDecoder } from '../codec/frame-decoder.js';
import { HEADER_LENGTH, type Frame } from '../codec/frames.js';
import { BackendCode, FrontendCode, decodeParameterStatus } from '../codec/messages.js';

const SYNC = 0x53; // S
const FUNCTION_CALL = 0x46; // F
/** Enough of a server message's payload for a ParameterStatus: a framer of the server's stream for serverMessage keeps at least this much. */
export const SERVER_HEAD_LENGTH = 4096;
/** The server messages the tracker reads (ReadyForQuery, ParameterStatus); the rest it only counts. */
export const SERVER_TRACKED: ReadonlySet<number> = new Set([BackendCode.ReadyForQuery, BackendCode.ParameterStatus]);
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
      this.clientCode(frame.code);
    }
    return chunk;
  }

  /**
   * One whole client message (not a Terminate: the caller ends the session on it) whose
   * `length` payload bytes the caller framed itself and forwards whole; only where what
   * fromClient was given ends at a message boundary.
   */
  clientMessage(code: number, length: number): void {
    this.clientPushed += HEADER_LENGTH + length;
    this.clientFramed += HEADER_LENGTH + length;
    this.clientCode(code);
  }

  fromServer(chunk: Buffer): void {
    this.serverBytes(chunk.length);
    this.server.push(chunk);
    for (let frame = this.server.next(); frame; frame = this.server.next()) {
      this.serverFramed += HEADER_LENGTH + frame.length;
      this.serverMessage(frame);
    }
  }

  /**
   * Bytes of the server's stream that the caller frames itself: it says where its whole messages
   * end (serverFramedTo) and shows the tracker those of the types in SERVER_TRACKED (serverMessage).
   */
  serverBytes(count: number): void {
    this.serverPushed += count;
  }

  /** The caller's framing of the server's stream: whole messages end `total` bytes into it. */
  serverFramedTo(total: number): void {
    this.serverFramed = total;
  }

  /** A whole server message of a type in SERVER_TRACKED, its payload cut to no less than SERVER_HEAD_LENGTH bytes. */
  serverMessage(frame: Frame): void {
    if (frame.code === BackendCode.ReadyForQuery) {
      this.readyForQuery(frame.payload[0]);
    } else if (frame.code === BackendCode.ParameterStatus && frame.payload.length === frame.length) {
      const status = decodeParameterStatus(frame.payload);
      if (status) this.parameters.set(status.name, status.value);
    }
  }

  /** A ReadyForQuery whose payload starts with `status` (I, T or E), as serverMessage reads it. */
  readyForQuery(status: number | undefined): void {
    this.owed = Math.max(0, this.owed - 1);
    this.status = String.fromCharCode(status ?? 0x49) as TransactionStatus;
  }

  private clientCode(code: number): void {
    if (code === FrontendCode.Query || code === SYNC || code === FUNCTION_CALL) this.owed++;
    if (code === SYNC) this.unsynced = false;
    else if (EXTENDED.has(code)) this.unsynced = true;
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
