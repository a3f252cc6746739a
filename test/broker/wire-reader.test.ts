/**
 * The handshake side of the codec: WireReader feeding a protocol's streaming decoder from a
 * socket. Whatever the chunking, the handshake reads the same units, and `detach` hands the relay
 * exactly the bytes after them, pipelined messages and a message cut short included.
 */
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { encodePacket } from '../../src/broker/mysql/codec/packets.js';
import { PacketLeg } from '../../src/broker/mysql/packet-leg.js';
import { FrameDecoder } from '../../src/broker/postgres/codec/frame-decoder.js';
import { cstring, encodeMessage } from '../../src/broker/postgres/codec/frames.js';
import { PgProtocolError } from '../../src/broker/postgres/codec/protocol-error.js';
import { encodeStartupMessage } from '../../src/broker/postgres/codec/startup.js';
import { HandshakeTimeoutError, PeerClosedError, WireReader } from '../../src/broker/wire-reader.js';
import { splitAt } from '../helpers/decoders.js';

const deadline = () => ({ at: Date.now() + 5_000, what: 'the test' });

/** What the relay gets after a handshake: the reader's unread bytes, then what the paused socket still holds. */
function handOver(reader: WireReader<{ push(chunk: Buffer): void; rest(): Buffer }>, socket: PassThrough): Buffer {
  const rest = reader.detach();
  const unread = (socket.read() as Buffer | null) ?? Buffer.alloc(0);
  return Buffer.concat([rest, unread]);
}

/** Writes `chunks` to a socket, all at once or one per tick while the reader waits. */
async function deliver(socket: PassThrough, chunks: Buffer[], spaced: boolean): Promise<void> {
  for (const chunk of chunks) {
    socket.write(chunk);
    if (spaced) await tick();
  }
}

describe('WireReader with FrameDecoder (a PostgreSQL login)', () => {
  const startup = encodeStartupMessage({ user: 'alice', database: 'orders' });
  const password = encodeMessage(0x70, cstring('secret'));
  // A client that sends its first query before the login is done, and the start of another.
  const early = Buffer.concat([encodeMessage(0x51, cstring('select 1')), encodeMessage(0x51, cstring('select 2')).subarray(0, 7)]);
  const stream = Buffer.concat([startup, password, early]);

  async function login(chunks: Buffer[], spaced: boolean): Promise<{ user: string | undefined; password: string; early: Buffer }> {
    const socket = new PassThrough();
    const reader = new WireReader(socket, new FrameDecoder({ maxLength: 4096 }));
    const delivered = deliver(socket, chunks, spaced);
    const packet = await reader.read((decoder) => decoder.nextStartupPacket(), deadline());
    const frame = await reader.read((decoder) => decoder.next(), deadline());
    await delivered;
    await tick();
    return { user: packet.type === 'startup' ? packet.params.user : undefined, password: frame.payload.toString(), early: handOver(reader, socket) };
  }

  const expected = { user: 'alice', password: 'secret\0', early };

  it('reads the same login and hands over the same early bytes whichever byte the stream is split at', async () => {
    for (let at = 0; at <= stream.length; at++) {
      expect(await login(splitAt(stream, at), false)).toEqual(expected);
      expect(await login(splitAt(stream, at), true)).toEqual(expected);
    }
  });

  it('does so in three pieces, and one byte at a time', async () => {
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 9) expect(await login(splitAt(stream, a, b), true)).toEqual(expected);
    }
    expect(await login([...stream].map((byte) => Buffer.from([byte])), true)).toEqual(expected);
  });

  it('hands back a message it was waiting for, as it came, when the handshake gives up', async () => {
    const socket = new PassThrough();
    const reader = new WireReader(socket, new FrameDecoder({ maxLength: 4096 }));
    socket.write(startup);
    await reader.read((decoder) => decoder.nextStartupPacket(), deadline());
    socket.write(password.subarray(0, 8));
    await expect(reader.read((decoder) => decoder.next(), { at: Date.now() + 50, what: 'the password' })).rejects.toThrow(HandshakeTimeoutError);
    expect(reader.detach()).toEqual(password.subarray(0, 8));
  });

  it('throws the codec error on a bad length, and PeerClosedError when the peer ends', async () => {
    const bad = new PassThrough();
    const reader = new WireReader(bad, new FrameDecoder({ maxLength: 4096 }));
    bad.write(Buffer.concat([startup, Buffer.from([0x70, 0, 0, 0x20, 0])]));
    await reader.read((decoder) => decoder.nextStartupPacket(), deadline());
    await expect(reader.read((decoder) => decoder.next(), deadline())).rejects.toThrow(PgProtocolError);
    const ended = new PassThrough();
    const closed = new WireReader(ended, new FrameDecoder());
    ended.end(startup.subarray(0, 5));
    await expect(closed.read((decoder) => decoder.nextStartupPacket(), deadline())).rejects.toThrow(PeerClosedError);
  });
});

describe('PacketLeg (a MySQL login)', () => {
  const greeting = encodePacket(0, Buffer.from('\x0agreeting'));
  const response = encodePacket(1, Buffer.alloc(40, 7));
  const early = Buffer.concat([encodePacket(0, Buffer.from('\x03select 1')), encodePacket(0, Buffer.from('\x03select 2')).subarray(0, 6)]);
  const stream = Buffer.concat([greeting, response, early]);

  async function converse(chunks: Buffer[]): Promise<{ payloads: string[]; last: number; early: Buffer }> {
    const socket = new PassThrough();
    const leg = new PacketLeg(socket, deadline(), 1024);
    const delivered = deliver(socket, chunks, true);
    const payloads = [(await leg.receive()).toString('hex'), (await leg.receive()).toString('hex')];
    await delivered;
    await tick();
    return { payloads, last: leg.last, early: handOver(leg.reader, socket) };
  }

  it('receives the same packets in order and hands over the same early bytes, however the stream is cut', async () => {
    const expected = { payloads: [Buffer.from('\x0agreeting').toString('hex'), Buffer.alloc(40, 7).toString('hex')], last: 1, early };
    for (let at = 0; at <= stream.length; at++) expect(await converse(splitAt(stream, at))).toEqual(expected);
    for (let a = 0; a <= stream.length; a += 4) {
      for (let b = a; b <= stream.length; b += 11) expect(await converse(splitAt(stream, a, b))).toEqual(expected);
    }
  });
});
