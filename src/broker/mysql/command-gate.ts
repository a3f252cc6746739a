/**
 * The client→server filter of a relayed MySQL session, pure: finds each command packet in the
 * byte stream (the codec's PacketDecoder keeping heads: bodies never buffered), passes the bytes on
 * untouched, and holds back the packets of intercepted commands (COM_CHANGE_USER, which the
 * session answers itself) so the server never sees them. At most the first 5 bytes of a packet
 * (header and command byte) wait for the decision. The gate stops after an intercepted command:
 * what follows it waits until the session has answered it.
 *
 * With a `rewrite`, a short COM_QUERY (at most MAX_KILL_PACKET bytes, known from its header) waits
 * whole and goes on as the rewrite returns it, or as it came (a KILL naming azdb's minted
 * connection id becomes one naming the server's thread; see kill-translation.ts).
 *
 * A packet is a command when its sequence id is 0, except in LOCAL INFILE data: there the ids
 * count on from 2 and wrap, so a 0 that follows a non-empty packet numbered 255 is more data.
 */
import { Command } from './codec/commands.js';
import { PacketDecoder } from './codec/packet-decoder.js';
import { PACKET_HEADER_LENGTH, encodePacket } from './codec/packets.js';
import { MAX_KILL_PACKET } from './kill-translation.js';

export type GateEvent =
  /** A command passed on; `head` is its first bytes (a view, valid during the push), `length` its whole length. */
  | { type: 'command'; head: Buffer; length: number }
  /**
   * A command held back, for the session to answer; `payload` is a copy of it (cut to the gate's
   * head length when `length` is larger), `lastSequenceId` the id the answer follows.
   */
  | { type: 'intercepted'; command: Command; payload: Buffer; length: number; lastSequenceId: number };

interface GateResult {
  /** Bytes to pass to the server, in order (views into the pushed chunk where possible). */
  forward: Buffer[];
  events: GateEvent[];
  /** The chunk's bytes after an intercepted command, not gated yet: push them once it is answered. */
  rest: Buffer;
}

type Decision = 'forward' | 'intercept' | 'inspect';

/** A short COM_QUERY's payload as it should reach the server, or undefined to pass it as it came. */
type QueryRewrite = (payload: Buffer) => Buffer | undefined;

const COMMAND_OFFSET = PACKET_HEADER_LENGTH;
/**
 * Bytes kept of each packet at least, so an intercepted command arrives whole: a COM_CHANGE_USER
 * with names and connection attributes fits. Below 4 KiB, a packet that spans chunks is copied
 * into Node's buffer pool rather than a fresh allocation.
 */
export const INTERCEPTED_HEAD_LENGTH = 4000;
const EMPTY = Buffer.alloc(0);

/** The default interception, one set for every gate (a relayed session keeps its gate). */
const CHANGE_USER_ONLY: ReadonlySet<number> = new Set([Command.ChangeUser]);

export class CommandGate {
  private readonly decoder: PacketDecoder;
  /** What to do with the packet in progress at the end of the last chunk, once known. */
  private decision: Decision | undefined;
  /** That packet's first bytes, while undecided (fewer than 5). */
  private held: Buffer = EMPTY;
  /** The last packet's last sequence id and length (numbers, not the packet: it would keep its chunk). */
  private previousLastSequenceId = 0;
  private previousLength = 0;

  /** Whether commands passed on are reported (for the audit); interceptions always are. */
  private readonly reportCommands: boolean;

  constructor(
    /** Bytes of each command to hand to the audit; 0 when nothing is audited. */
    headLength: number,
    private readonly intercepted: ReadonlySet<number> = CHANGE_USER_ONLY,
    private readonly rewrite?: QueryRewrite,
  ) {
    this.reportCommands = headLength > 0;
    // Only intercepted and inspected commands need their payload; the rest their command byte, or the audit's head.
    // The cap is the largest max_allowed_packet.
    const forwardedHead = Math.max(1, headLength);
    this.decoder = new PacketDecoder({
      headLength: (sequenceId, length, first) => {
        const decision = this.decide(this.isCommand(sequenceId), first, length);
        return decision === 'intercept' ? INTERCEPTED_HEAD_LENGTH : decision === 'inspect' ? MAX_KILL_PACKET : forwardedHead;
      },
    });
  }

  /** Throws MySqlProtocolError on bad framing; the session ends then. */
  push(chunk: Buffer): GateResult {
    const decoder = this.decoder;
    decoder.push(chunk);
    const out = new Output(chunk);
    const events: GateEvent[] = [];
    let cursor = 0;
    for (let packet = decoder.next(); packet !== undefined; packet = decoder.next()) {
      const end = decoder.position;
      const isCommand = this.isCommand(packet.sequenceId);
      const decision = this.decision ?? this.decide(isCommand, packet.payload[0], packet.length);
      if (decision !== 'intercept') {
        const rewritten = decision === 'inspect' ? this.rewrite!(packet.payload) : undefined;
        // A packet inspected across chunks was held back whole: it goes on re-framed.
        const whole = rewritten ?? (this.decision === 'inspect' ? packet.payload : undefined);
        if (whole) out.insert(encodePacket(packet.sequenceId, whole));
        else out.add(this.held, cursor, end);
        if (this.reportCommands && isCommand && packet.length > 0) events.push({ type: 'command', head: packet.payload, length: packet.length });
      }
      this.held = EMPTY;
      this.decision = undefined;
      this.previousLastSequenceId = packet.lastSequenceId;
      this.previousLength = packet.length;
      cursor = end;
      if (decision === 'intercept') {
        const { payload, length, lastSequenceId } = packet;
        events.push({ type: 'intercepted', command: payload[0]!, payload: Buffer.from(payload), length, lastSequenceId });
        return { forward: out.buffers(), events, rest: Buffer.from(decoder.rest()) };
      }
    }
    if (cursor < chunk.length) this.takeTrailing(out, cursor);
    return { forward: out.buffers(), events, rest: EMPTY };
  }

  /** Bytes of a packet that goes on in the next chunk. */
  private takeTrailing(out: Output, from: number): void {
    const chunk = out.chunk;
    if (this.decision === undefined) {
      // Only the header and the command byte decide: never copy more of the chunk than those.
      const start = this.held.length > 0 ? Buffer.concat([this.held, chunk.subarray(from, from + COMMAND_OFFSET + 1 - this.held.length)]) : chunk.subarray(from);
      if (start.length <= COMMAND_OFFSET) {
        this.held = Buffer.from(start);
        return;
      }
      this.decision = this.decide(this.isCommand(start[COMMAND_OFFSET - 1]!), start[COMMAND_OFFSET], start.readUIntLE(0, 3));
    }
    if (this.decision === 'forward') out.add(this.held, from, chunk.length);
    this.held = EMPTY;
  }

  private isCommand(sequenceId: number): boolean {
    if (sequenceId !== 0) return false;
    return !(this.previousLastSequenceId === 0xff && this.previousLength > 0);
  }

  private decide(isCommand: boolean, code: number | undefined, length: number): Decision {
    if (!isCommand || code === undefined) return 'forward';
    if (this.intercepted.has(code)) return 'intercept';
    return this.rewrite && code === Command.Query && length <= MAX_KILL_PACKET ? 'inspect' : 'forward';
  }
}

/** Collects forwarded ranges of one chunk, merging neighbours so a whole chunk goes on as itself. */
class Output {
  private readonly parts: Buffer[] = [];
  private rangeStart = -1;
  private rangeEnd = -1;

  constructor(readonly chunk: Buffer) {}

  add(prefix: Buffer, from: number, to: number): void {
    if (prefix.length > 0) {
      this.flush();
      this.parts.push(prefix);
    }
    if (from === to) return;
    if (this.rangeEnd === from) {
      this.rangeEnd = to;
      return;
    }
    this.flush();
    this.rangeStart = from;
    this.rangeEnd = to;
  }

  /** Bytes of the gate's own making, in order after what was added before. */
  insert(bytes: Buffer): void {
    this.flush();
    this.parts.push(bytes);
  }

  buffers(): Buffer[] {
    this.flush();
    return this.parts;
  }

  private flush(): void {
    if (this.rangeStart < 0) return;
    this.parts.push(this.rangeStart === 0 && this.rangeEnd === this.chunk.length ? this.chunk : this.chunk.subarray(this.rangeStart, this.rangeEnd));
    this.rangeStart = -1;
    this.rangeEnd = -1;
  }
}
