/** The unpooled disconnect_expired boundary: at rest only with everything answered and no transaction open. */
import { describe, expect, it } from 'vitest';
import { postgresBoundary } from '../../../src/broker/postgres/transaction-boundary.js';
import { encodeReadyForQuery } from '../../../src/broker/postgres/codec/messages.js';

function message(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(code, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const query = (sql: string): Buffer => message('Q', Buffer.from(`${sql}\0`));
const commandComplete = message('C', Buffer.from('COMMIT\0'));
// A DataRow whose bytes look like a ReadyForQuery: only boundaries count.
const trickyRow = message('D', Buffer.from([0, 1, 0, 0, 0, 5, 0x5a, 0, 0, 0, 5]));

describe('postgresBoundary', () => {
  it('is at rest after the login, and after the answer to a query only when it is idle, at every split of the answer', () => {
    for (const status of ['I', 'T', 'E'] as const) {
      const answer = Buffer.concat([trickyRow, commandComplete, encodeReadyForQuery(status)]);
      for (let split = 1; split < answer.length; split++) {
        const boundary = postgresBoundary(Buffer.alloc(0));
        expect(boundary.atRest).toBe(true);
        boundary.fromClient(query('commit'));
        expect(boundary.atRest).toBe(false);
        boundary.fromServer(answer.subarray(0, split));
        expect(boundary.atRest).toBe(false);
        boundary.fromServer(answer.subarray(split));
        expect(boundary.atRest).toBe(status === 'I');
      }
    }
  });

  it('is not at rest while the server stream ends inside a message after the ReadyForQuery', () => {
    const boundary = postgresBoundary(Buffer.alloc(0));
    boundary.fromClient(query('select 1'));
    boundary.fromServer(Buffer.concat([encodeReadyForQuery('I'), trickyRow.subarray(0, 7)]));
    expect(boundary.atRest).toBe(false);
    boundary.fromServer(trickyRow.subarray(7));
    expect(boundary.atRest).toBe(true);
  });

  it('is not at rest while a second pipelined query is in flight, though the first one ended idle', () => {
    const boundary = postgresBoundary(Buffer.alloc(0));
    boundary.fromClient(Buffer.concat([query('select 1'), query('select pg_sleep(10)')]));
    boundary.fromServer(Buffer.concat([trickyRow, commandComplete, encodeReadyForQuery('I')]));
    expect(boundary.atRest).toBe(false);
    boundary.fromServer(Buffer.concat([commandComplete, encodeReadyForQuery('I')]));
    expect(boundary.atRest).toBe(true);
  });

  it('counts the client bytes read past the login (early) as in flight', () => {
    const boundary = postgresBoundary(query('select 1'));
    expect(boundary.atRest).toBe(false);
    boundary.fromServer(Buffer.concat([commandComplete, encodeReadyForQuery('I')]));
    expect(boundary.atRest).toBe(true);
  });

  it('is never at rest again after client bytes it cannot frame', () => {
    const boundary = postgresBoundary(Buffer.alloc(0));
    boundary.fromClient(Buffer.from([0x51, 0, 0, 0, 1]));
    boundary.fromServer(encodeReadyForQuery('I'));
    expect(boundary.atRest).toBe(false);
  });
});
