import { describe, expect, it } from 'vitest';
import { ClientStream, TERMINATE, type ClientPiece } from '../../../../src/broker/postgres/pool/client-stream.js';
import { cstring, encodeMessage } from '../../../../src/broker/postgres/codec/frames.js';
import { PgProtocolError } from '../../../../src/broker/postgres/codec/protocol-error.js';

const query = encodeMessage(0x51, cstring('copy t from stdin'));
const copyData = encodeMessage(0x64, Buffer.alloc(10_000, 0x61));
const smallCopy = encodeMessage(0x64, Buffer.from('1\tx\n'));
const copyDone = encodeMessage(0x63);
const sync = encodeMessage(0x53);
const stream = Buffer.concat([query, copyData, smallCopy, copyDone, sync]);
const terminate = encodeMessage(0x58);

/** Every piece of `chunks`, in order (TERMINATE too). */
function split(chunks: Buffer[], splitter = new ClientStream()): Array<ClientPiece | typeof TERMINATE> {
  const pieces: Array<ClientPiece | typeof TERMINATE> = [];
  for (const chunk of chunks) {
    splitter.push(chunk);
    for (let piece = splitter.next(); piece !== undefined; piece = splitter.next()) pieces.push(piece);
  }
  return pieces;
}

const isRun = (p: ClientPiece | typeof TERMINATE): p is Buffer => Buffer.isBuffer(p);

/** The codes of the whole messages in runs, each run checked to be whole messages. */
function codes(pieces: Array<ClientPiece | typeof TERMINATE>): string[] {
  const found: string[] = [];
  for (const run of pieces.filter(isRun)) {
    let offset = 0;
    while (offset < run.length) {
      found.push(String.fromCharCode(run[offset]!));
      offset += 1 + run.readInt32BE(offset + 1);
    }
    expect(offset).toBe(run.length);
  }
  return found;
}

function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

describe('ClientStream', () => {
  it('hands every message but CopyData over whole, and CopyData bytes as they come, however the stream is cut', () => {
    for (const size of [1, 2, 5, 6, 7, 4096, stream.length]) {
      const pieces = split(chunksOf(stream, size));
      const forwarded = Buffer.concat(pieces.map((p) => (p === TERMINATE ? Buffer.alloc(0) : isRun(p) ? p : p.through)));
      expect(forwarded.equals(stream), `chunks of ${size}`).toBe(true);
      expect(codes(pieces), `chunks of ${size}`).toEqual(['Q', 'c', 'S']);
    }
  });

  it('hands a chunk of whole messages over as that chunk, and consecutive whole messages as one view', () => {
    const messages = Buffer.concat([query, sync, query]);
    const splitter = new ClientStream();
    expect(split([messages], splitter)).toEqual([messages]);
    expect(split([messages], splitter)[0]).toBe(messages);
    const pieces = split([Buffer.concat([query, sync, copyDone, smallCopy, sync])]);
    expect(pieces.map((p) => (isRun(p) ? codes([p]).join('') : p === TERMINATE ? 'X' : 'through'))).toEqual(['QSc', 'through', 'S']);
  });

  it('never holds a CopyData message: a large one passes as views of the chunks it came in', () => {
    const splitter = new ClientStream();
    const first = copyData.subarray(0, 4000);
    const pieces = split([first], splitter);
    expect(pieces).toHaveLength(1);
    const only = pieces[0] as { through: Buffer };
    expect(only.through.buffer).toBe(first.buffer);
    expect(only.through.length).toBe(4000);
    const rest = split([Buffer.concat([copyData.subarray(4000), sync])], splitter);
    expect(rest.map((p) => (isRun(p) ? 'messages' : p === TERMINATE ? 'X' : p.through.length))).toEqual([copyData.length - 4000, 'messages']);
  });

  it('hands Terminate over on its own, after the messages before it, however it is cut', () => {
    const bytes = Buffer.concat([query, sync, terminate]);
    for (const size of [1, 2, 3, 5, 6, bytes.length]) {
      const pieces = split(chunksOf(bytes, size));
      expect(pieces.at(-1), `chunks of ${size}`).toBe(TERMINATE);
      expect(codes(pieces)).toEqual(['Q', 'S']);
    }
  });

  it('refuses a message length below 4, at once or after a cut header', () => {
    const bad = Buffer.from([0x51, 0, 0, 0, 3]);
    expect(() => split([bad])).toThrow(PgProtocolError);
    expect(() => split([bad.subarray(0, 2), bad.subarray(2)])).toThrow(PgProtocolError);
    expect(() => split([Buffer.concat([sync, bad])])).toThrow(/invalid message length 3 for message type 'Q'/);
  });
});
