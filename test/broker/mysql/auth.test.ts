import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createScramble,
  decodeClearPassword,
  encodeClearPassword,
  scrambleCachingSha2Password,
  scrambleNativePassword,
  verifyCachingSha2Password,
  verifyNativePassword,
} from '../../../src/broker/mysql/auth.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { MySqlProtocolError } from '../../../src/broker/mysql/codec/protocol-error.js';
import { createPrng } from '../../helpers/prng.js';

// Independent of the code under test: the formulas written out with node:crypto.
const hash = (algorithm: string, ...parts: Buffer[]) => {
  const h = createHash(algorithm);
  for (const part of parts) h.update(part);
  return h.digest();
};
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((byte, i) => byte ^ b[i]!));
const native = (password: Buffer, scramble: Buffer) => xor(hash('sha1', password), hash('sha1', scramble, hash('sha1', hash('sha1', password))));
const cachingSha2 = (password: Buffer, scramble: Buffer) => xor(hash('sha256', password), hash('sha256', hash('sha256', hash('sha256', password)), scramble));

describe('known vectors', () => {
  // From go-sql-driver/mysql auth_test.go (recorded against real servers).
  it('mysql_native_password', () => {
    const scramble = Buffer.from([70, 114, 92, 94, 1, 38, 11, 116, 63, 114, 23, 101, 126, 103, 26, 95, 81, 17, 24, 21]);
    const expected = Buffer.from([53, 177, 140, 159, 251, 189, 127, 53, 109, 252, 172, 50, 211, 192, 240, 164, 26, 48, 207, 45]);
    expect(scrambleNativePassword('secret', scramble)).toEqual(expected);
    expect(verifyNativePassword('secret', scramble, expected)).toBe(true);
  });

  it('caching_sha2_password', () => {
    const vectors: Array<[number[], string, string]> = [
      [[10, 47, 74, 111, 75, 73, 34, 48, 88, 76, 114, 74, 37, 13, 3, 80, 82, 2, 23, 21], 'secret', 'f490e76f66d9d86665ce54d98c78d0acfe2fb0b08b423da807144873d30b312c'],
      [[10, 47, 74, 111, 75, 73, 34, 48, 88, 76, 114, 74, 37, 13, 3, 80, 82, 2, 23, 21], 'secret2', 'abc3934a012cf342e876071c8ee202de51785b430258a7a0138bc79c4d800bc6'],
      [[90, 105, 74, 126, 30, 48, 37, 56, 3, 23, 115, 127, 69, 22, 41, 84, 32, 123, 43, 118], 'secret', Buffer.from([102, 32, 5, 35, 143, 161, 140, 241, 171, 232, 56, 139, 43, 14, 107, 196, 249, 170, 147, 60, 220, 204, 120, 178, 214, 15, 184, 150, 26, 61, 57, 235]).toString('hex')],
      [[6, 81, 96, 114, 14, 42, 50, 30, 76, 47, 1, 95, 126, 81, 62, 94, 83, 80, 52, 85], 'secret', Buffer.from([171, 201, 138, 146, 89, 159, 11, 170, 0, 67, 165, 49, 175, 94, 218, 68, 177, 109, 110, 86, 34, 33, 44, 190, 67, 240, 70, 110, 40, 139, 124, 41]).toString('hex')],
    ];
    for (const [scramble, password, hex] of vectors) {
      expect(scrambleCachingSha2Password(password, Buffer.from(scramble)).toString('hex')).toBe(hex);
      expect(verifyCachingSha2Password(password, Buffer.from(scramble), Buffer.from(hex, 'hex'))).toBe(true);
    }
  });

  it("mysql_native_password against MySQL's stored hash of 'password'", () => {
    // PASSWORD('password') = *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19 = SHA1(SHA1('password')).
    // A server recovers SHA1(password) from the response and the stored hash, and hashes it again.
    const stored = Buffer.from('2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19', 'hex');
    const scramble = Buffer.from('abcdefghijklmnopqrst');
    const stage1 = xor(scrambleNativePassword('password', scramble), hash('sha1', scramble, stored));
    expect(hash('sha1', stage1)).toEqual(stored);
  });

  it('clear password, as written to the wire for full authentication over TLS', () => {
    expect(encodePacket(3, encodeClearPassword('secret'))).toEqual(Buffer.from([7, 0, 0, 3, 115, 101, 99, 114, 101, 116, 0]));
  });
});

describe('scrambles against the formulas', () => {
  const prng = createPrng(20240611);
  const cases = Array.from({ length: 50 }, () => ({ password: prng.bytes(1 + prng.int(40)), scramble: createScramble(prng.bytes) }));

  it.each([
    ['mysql_native_password', scrambleNativePassword, native],
    ['caching_sha2_password', scrambleCachingSha2Password, cachingSha2],
  ] as const)('%s matches for random passwords and scrambles', (_name, scramble, formula) => {
    for (const c of cases) expect(scramble(c.password, c.scramble)).toEqual(formula(c.password, c.scramble));
  });

  it('hash passwords as UTF-8', () => {
    const scramble = createScramble();
    expect(scrambleNativePassword('pässwörd', scramble)).toEqual(native(Buffer.from('pässwörd', 'utf8'), scramble));
    expect(scrambleCachingSha2Password('pässwörd', scramble)).toEqual(cachingSha2(Buffer.from('pässwörd', 'utf8'), scramble));
  });

  it('send nothing for an empty password', () => {
    expect(scrambleNativePassword('', createScramble())).toEqual(Buffer.alloc(0));
    expect(scrambleCachingSha2Password('', createScramble())).toEqual(Buffer.alloc(0));
  });

  it('refuse a scramble that is not 20 bytes', () => {
    expect(() => scrambleNativePassword('x', Buffer.alloc(21, 1))).toThrow(MySqlProtocolError);
    expect(() => scrambleCachingSha2Password('x', Buffer.alloc(8, 1))).toThrow(MySqlProtocolError);
  });
});

describe('server-side verification', () => {
  const scramble = createScramble();

  it.each([
    ['mysql_native_password', scrambleNativePassword, verifyNativePassword],
    ['caching_sha2_password', scrambleCachingSha2Password, verifyCachingSha2Password],
  ] as const)('%s accepts the right password only', (_name, scrambleFn, verify) => {
    const response = scrambleFn('tunnel-password', scramble);
    expect(verify('tunnel-password', scramble, response)).toBe(true);
    expect(verify('tunnel-passwore', scramble, response)).toBe(false);
    expect(verify('tunnel-password', createScramble(), response)).toBe(false);
    expect(verify('tunnel-password', scramble, Buffer.alloc(0))).toBe(false);
    expect(verify('tunnel-password', scramble, response.subarray(1))).toBe(false);
    const flipped = Buffer.from(response);
    flipped[flipped.length - 1]! ^= 1;
    expect(verify('tunnel-password', scramble, flipped)).toBe(false);
    expect(verify('', scramble, Buffer.alloc(0))).toBe(true);
    expect(verify('', scramble, response)).toBe(false);
  });
});

describe('clear password', () => {
  it('round-trips, and refuses NUL inside', () => {
    expect(encodeClearPassword('eyJ0.token')).toEqual(Buffer.from('eyJ0.token\0'));
    expect(decodeClearPassword(encodeClearPassword('eyJ0.token'))).toBe('eyJ0.token');
    expect(decodeClearPassword(Buffer.from('no-terminator'))).toBe('no-terminator');
    expect(() => decodeClearPassword(Buffer.from('a\0b\0'))).toThrow(MySqlProtocolError);
    expect(() => encodeClearPassword('a\0b')).toThrow(RangeError);
  });
});

describe('createScramble', () => {
  it('makes 20 seven-bit bytes, never NUL or $', () => {
    for (let i = 0; i < 200; i++) {
      const scramble = createScramble();
      expect(scramble).toHaveLength(20);
      for (const byte of scramble) {
        expect(byte).toBeGreaterThan(0);
        expect(byte).toBeLessThan(0x80);
        expect(byte).not.toBe(0x24);
      }
    }
  });

  it('maps the bytes it must avoid', () => {
    expect([...createScramble((n) => Buffer.alloc(n, 0x00))]).toEqual(Array(20).fill(1));
    expect([...createScramble((n) => Buffer.alloc(n, 0x80))]).toEqual(Array(20).fill(1));
    expect([...createScramble((n) => Buffer.alloc(n, 0x24))]).toEqual(Array(20).fill(0x25));
    expect([...createScramble((n) => Buffer.alloc(n, 0xff))]).toEqual(Array(20).fill(0x7f));
  });
});
