import { describe, expect, it } from 'vitest';
import { ClientStream, type ClientPiece } from '../../../../src/broker/postgres/pool/client-stream.js';
import { cstring, encodeMessage } from '../../../../src/broker/postgres/codec/frames.js';
import { PgProtocolError } from '../../../../src/broker/postgres/codec/protocol-error.js';

const query = encodeMessage(0x51, cstring('copy t from stdin'));
const copyData = encodeMessage(0x64, Buffer.alloc(10_000, 0x61));
const smallCopy = encodeMessage(0x64, Buffer.from('1\tx\n'));
const copyDone = encodeMessage(0x63);
const sync = encodeMessage(0x53);
const stream = Buffer.concat([query, copyData, smallCopy, copyDone, sync]);

/** The bytes the relay would forward: whole messages re-encoded, CopyData as it passed through. */
function forwarded(pieces: ClientPiece[]): Buffer {
  return Buffer.concat(pieces.map((p) => (p.frame ? encodeMessage(p.frame.code, p.frame.payload) : p.through)));
}

describe('ClientStream', () => {
  it('hands every message but CopyData over whole, and CopyData bytes as they come, however the stream is cut', () => {
    for (const size of [1, 2, 5, 6, 7, 4096, stream.length]) {
      const splitter = new ClientStream();
      const pieces: ClientPiece[] = [];
      for (let at = 0; at < stream.length; at += size) pieces.push(...splitter.push(stream.subarray(at, at + size)));
      expect(forwarded(pieces).equals(stream), `chunks of ${size}`).toBe(true);
      expect(pieces.filter((p) => p.frame).map((p) => String.fromCharCode(p.frame!.code))).toEqual(['Q', 'c', 'S']);
      // A message that came in one chunk is also handed over as those bytes, to forward without re-encoding.
      for (const p of pieces) if (p.bytes) expect(p.bytes.equals(encodeMessage(p.frame.code, p.frame.payload))).toBe(true);
      if (size === stream.length) expect(pieces.filter((p) => p.frame && !p.bytes)).toEqual([]);
    }
  });

  it('never holds a CopyData message: a large one passes as views of the chunks it came in', () => {
    const splitter = new ClientStream();
    const first = copyData.subarray(0, 4000);
    const pieces = splitter.push(first);
    expect(pieces).toHaveLength(1);
    expect(pieces[0]!.through!.buffer).toBe(first.buffer);
    expect(pieces[0]!.through!.length).toBe(4000);
    const rest = splitter.push(Buffer.concat([copyData.subarray(4000), sync]));
    expect(rest.map((p) => (p.frame ? 'frame' : p.through!.length))).toEqual([copyData.length - 4000, 'frame']);
  });

  it('refuses a message length below 4', () => {
    const bad = Buffer.from([0x51, 0, 0, 0, 3]);
    expect(() => new ClientStream().push(bad)).toThrow(PgProtocolError);
  });
});
