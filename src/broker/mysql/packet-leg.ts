/**
 * One side of a login conversation: packets in order, each reply numbered after the last packet
 * either side sent. Reads are bounded in size (the codec's PacketDecoder) and in time (the deadline).
 */
import type { Duplex } from 'node:stream';
import { WireReader } from '../wire-reader.js';
import { PacketDecoder } from './codec/packet-decoder.js';
import { encodePacket, nextSequenceId, packetsOutOfOrderError, sequenceIdAfter } from './codec/packets.js';

export class PacketLeg<S extends Duplex = Duplex> {
  /** Sequence id of the last packet sent or received; the server's greeting is packet 0. */
  last = 0xff;
  reader: WireReader<PacketDecoder>;

  constructor(
    public socket: S,
    private readonly deadline: { at: number; what: string },
    private readonly maxPacketLength: number,
  ) {
    this.reader = this.readerFor(socket);
  }

  /** The framed packet that follows the last one; advances the sequence. */
  frame(payload: Buffer): Buffer {
    const sequenceId = nextSequenceId(this.last);
    this.last = (sequenceIdAfter(sequenceId, payload.length) + 0xff) & 0xff;
    return encodePacket(sequenceId, payload);
  }

  send(payload: Buffer): void {
    this.socket.write(this.frame(payload));
  }

  async receive(): Promise<Buffer> {
    const packet = await this.reader.read((decoder) => decoder.next(), this.deadline);
    if (packet.sequenceId !== nextSequenceId(this.last)) throw packetsOutOfOrderError(packet.sequenceId, this.last);
    this.last = packet.lastSequenceId;
    return packet.payload;
  }

  /** Moves the conversation to a new socket (after a TLS upgrade); detach the old reader first. */
  switchTo(socket: S): void {
    this.socket = socket;
    this.reader = this.readerFor(socket);
  }

  private readerFor(socket: S): WireReader<PacketDecoder> {
    return new WireReader(socket, new PacketDecoder({ maxPacketLength: this.maxPacketLength }));
  }
}
