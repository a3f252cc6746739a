/** The backend-stream scan behind disconnect_expired: ReadyForQuery at the end of a chunk, at every split. */
import { describe, expect, it } from 'vitest';
import { BoundaryScanner } from '../../../src/broker/postgres/transaction-boundary.js';
import { encodeReadyForQuery } from '../../../src/broker/postgres/codec/messages.js';

function message(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(code, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const commandComplete = message('C', Buffer.from('COMMIT\0'));
// A DataRow whose bytes look like a ReadyForQuery: only boundaries count.
const trickyRow = message('D', Buffer.from([0, 1, 0, 0, 0, 5, 0x5a, 0, 0, 0, 5]));

describe('BoundaryScanner', () => {
  it('reports the status of a ReadyForQuery that ends the bytes, at every split of the stream', () => {
    for (const status of ['I', 'T', 'E'] as const) {
      const stream = Buffer.concat([trickyRow, commandComplete, encodeReadyForQuery(status)]);
      for (let split = 1; split < stream.length; split++) {
        const scanner = new BoundaryScanner();
        expect(scanner.push(stream.subarray(0, split))).toBeUndefined();
        expect(scanner.push(stream.subarray(split))).toBe(status.charCodeAt(0));
      }
    }
  });

  it('reports nothing when more follows the ReadyForQuery or the chunk ends inside a message', () => {
    const scanner = new BoundaryScanner();
    expect(scanner.push(Buffer.concat([encodeReadyForQuery('I'), commandComplete]))).toBeUndefined();
    expect(scanner.push(trickyRow.subarray(0, 7))).toBeUndefined();
    expect(scanner.push(Buffer.concat([trickyRow.subarray(7), encodeReadyForQuery('I')]))).toBe(0x49);
  });
});
