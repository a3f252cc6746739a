import { describe, expect, it } from 'vitest';
import { cstring, encodeMessage } from '../../../../src/broker/postgres/codec/frames.js';
import { encodeErrorResponse, encodeReadyForQuery } from '../../../../src/broker/postgres/codec/messages.js';
import { ReplyFilter } from '../../../../src/broker/postgres/pool/reply-filter.js';

const msg = (code: string, payload: Buffer = Buffer.alloc(0)) => encodeMessage(code.charCodeAt(0), payload);
const PARSE_COMPLETE = msg('1');
const BIND_COMPLETE = msg('2');
const CLOSE_COMPLETE = msg('3');
const ROW = msg('D', Buffer.concat([Buffer.from([0, 1]), Buffer.from([0, 0, 1, 0]), Buffer.alloc(256, 0x78)]));
const DONE = msg('C', cstring('SELECT 1'));
const READY = encodeReadyForQuery('I');

/** Drops every ParseComplete and CloseComplete (in the relay the StatementMapper decides which). */
const dropOwn = () => new ReplyFilter((frame) => frame.code !== 0x31 && frame.code !== 0x33);

function feed(filter: ReplyFilter, parts: Buffer[]): Buffer {
  return Buffer.concat(parts.map((part) => filter.push(part)));
}

describe('ReplyFilter', () => {
  const stream = Buffer.concat([PARSE_COMPLETE, BIND_COMPLETE, ROW, CLOSE_COMPLETE, PARSE_COMPLETE, ROW, DONE, CLOSE_COMPLETE, READY]);
  const expected = Buffer.concat([BIND_COMPLETE, ROW, ROW, DONE, READY]);

  it('drops the messages it is told to, whole, at every split of the stream', () => {
    for (let at = 0; at <= stream.length; at++) {
      expect(feed(dropOwn(), [stream.subarray(0, at), stream.subarray(at)])).toEqual(expected);
    }
  });

  it('drops them when the stream comes a byte at a time, and in three parts at every pair of splits near them', () => {
    expect(feed(dropOwn(), [...stream].map((b) => Buffer.from([b])))).toEqual(expected);
    for (let a = 0; a <= 20; a++) {
      for (let b = a; b <= stream.length; b += 7) {
        expect(feed(dropOwn(), [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)])).toEqual(expected);
      }
    }
  });

  it('replaces a message whole, or passes it as it came when part of it had gone on already, at every split', () => {
    const before = msg('E', Buffer.from('SERROR\0C42P05\0Mprepared statement "azdb_duplicate" already exists\0\0'));
    const after = msg('E', Buffer.from('SERROR\0C42P05\0Mprepared statement "s1" already exists\0\0'));
    const replacing = () => new ReplyFilter((frame) => (frame.code === 0x31 ? false : frame.code === 0x45 ? after : true));
    const input = Buffer.concat([PARSE_COMPLETE, before, READY]);
    const errorStart = PARSE_COMPLETE.length;
    for (let at = 0; at <= input.length; at++) {
      const out = feed(replacing(), [input.subarray(0, at), input.subarray(at)]);
      // A cut inside the error's body: its head went on with the first part, so it cannot be replaced.
      const whole = at < errorStart + 5 || at >= errorStart + before.length;
      expect(out).toEqual(Buffer.concat([whole ? after : before, READY]));
    }
  });

  it('passes chunks it drops nothing from as they are, without copying', () => {
    const filter = dropOwn();
    const chunk = Buffer.concat([ROW, DONE, READY]);
    expect(filter.push(chunk)).toBe(chunk);
    // A large message split over chunks is passed on in parts, as it comes.
    const first = ROW.subarray(0, 100);
    expect(filter.push(first)).toBe(first);
  });

  it('notices a FATAL error whatever the split', () => {
    const fatal = encodeErrorResponse({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' });
    const bytes = Buffer.concat([ROW, fatal]);
    for (let at = 0; at <= bytes.length; at++) {
      const filter = dropOwn();
      expect(feed(filter, [bytes.subarray(0, at), bytes.subarray(at)])).toEqual(bytes);
      expect(filter.fatal).toBe(true);
    }
    const plain = dropOwn();
    plain.push(encodeErrorResponse({ severity: 'ERROR', code: '42601', message: 'FATAL is only a word here' }));
    expect(plain.fatal).toBe(false);
  });

  it('with a set of types to read, is asked only about those (and errors) and frames the rest by length, at every split', () => {
    const withError = Buffer.concat([stream.subarray(0, stream.length - READY.length), encodeErrorResponse({ severity: 'ERROR', code: '42601', message: 'x' }), READY]);
    const wanted = Buffer.concat([expected.subarray(0, expected.length - READY.length), encodeErrorResponse({ severity: 'ERROR', code: '42601', message: 'x' }), READY]);
    for (let at = 0; at <= withError.length; at++) {
      const asked = new Set<number>();
      const filter = new ReplyFilter((frame) => {
        asked.add(frame.code);
        return frame.code !== 0x31 && frame.code !== 0x33;
      }, new Set([0x31, 0x33, 0x5a]));
      const first = filter.push(withError.subarray(0, at));
      // Where the whole messages of the first part end: at most the split, and a message boundary of the stream.
      expect(filter.framedBytes).toBeLessThanOrEqual(at);
      expect(Buffer.concat([first, filter.push(withError.subarray(at))])).toEqual(wanted);
      expect([...asked].sort()).toEqual([0x31, 0x33, 0x45, 0x5a]);
      expect(filter.framedBytes).toBe(withError.length);
    }
  });
});
