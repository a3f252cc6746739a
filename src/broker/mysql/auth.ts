/**
 * Password scrambles of the MySQL auth plugins, both sides, as pure functions (randomness aside):
 * the broker is the server to local clients (checking the tunnel password) and the client to
 * upstream servers (the Entra token is the password).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { pooledRandomBytes } from '../random-pool.js';
import { withoutTrailingNul } from './codec/auth-messages.js';
import { SCRAMBLE_LENGTH } from './codec/handshake.js';
import { MySqlProtocolError } from './codec/protocol-error.js';

export enum AuthPlugin {
  NativePassword = 'mysql_native_password',
  CachingSha2Password = 'caching_sha2_password',
  ClearPassword = 'mysql_clear_password',
  Sha256Password = 'sha256_password',
}

const DOLLAR = 0x24;

const sha1 = (...parts: Buffer[]): Buffer => parts.reduce((h, part) => h.update(part), createHash('sha1')).digest();
const sha256 = (...parts: Buffer[]): Buffer => parts.reduce((h, part) => h.update(part), createHash('sha256')).digest();
const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((byte, i) => byte ^ b[i]!));
const bytesOf = (password: string | Buffer): Buffer => (typeof password === 'string' ? Buffer.from(password, 'utf8') : password);

/**
 * A fresh 20-byte scramble like the servers make: 7-bit, no NUL (it is NUL-terminated on the
 * wire) and no '$' (it separates fields in stored hashes).
 */
export function createScramble(random: (size: number) => Buffer = pooledRandomBytes): Buffer {
  const scramble = Buffer.from(random(SCRAMBLE_LENGTH));
  for (let i = 0; i < SCRAMBLE_LENGTH; i++) {
    let byte = scramble[i]! & 0x7f;
    if (byte === 0 || byte === DOLLAR) byte++;
    scramble[i] = byte;
  }
  return scramble;
}

function checkScramble(scramble: Buffer): void {
  if (scramble.length !== SCRAMBLE_LENGTH) throw new MySqlProtocolError(`the scramble is ${scramble.length} bytes, not ${SCRAMBLE_LENGTH}`);
}

/**
 * The scramble-independent hashes of the last string password of each plugin: a tunnel checks its
 * one password (and logs in upstream with one cached token) on every connection.
 */
const lastStages = new Map<string, { password: string; stage1: Buffer; stage2: Buffer }>();

function passwordStages(plugin: string, password: string | Buffer, hash: (...parts: Buffer[]) => Buffer): { stage1: Buffer; stage2: Buffer } {
  const cached = typeof password === 'string' ? lastStages.get(plugin) : undefined;
  if (cached?.password === password) return cached;
  const stage1 = hash(bytesOf(password));
  const stages = { stage1, stage2: hash(stage1) };
  if (typeof password === 'string') lastStages.set(plugin, { password, ...stages });
  return stages;
}

/** mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))); empty for no password. */
export function scrambleNativePassword(password: string | Buffer, scramble: Buffer): Buffer {
  checkScramble(scramble);
  if (password.length === 0) return Buffer.alloc(0);
  const { stage1, stage2 } = passwordStages(AuthPlugin.NativePassword, password, sha1);
  return xor(stage1, sha1(scramble, stage2));
}

/** caching_sha2_password fast path: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble). */
export function scrambleCachingSha2Password(password: string | Buffer, scramble: Buffer): Buffer {
  checkScramble(scramble);
  if (password.length === 0) return Buffer.alloc(0);
  const { stage1, stage2 } = passwordStages(AuthPlugin.CachingSha2Password, password, sha256);
  return xor(stage1, sha256(stage2, scramble));
}

/** Compares in time independent of where the bytes differ. */
function constantTimeEqual(expected: Buffer, actual: Buffer): boolean {
  if (expected.length !== actual.length) {
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(expected, actual);
}

/** Server side: does a client's mysql_native_password response prove it knows `password`? */
export function verifyNativePassword(password: string | Buffer, scramble: Buffer, response: Buffer): boolean {
  return constantTimeEqual(scrambleNativePassword(password, scramble), response);
}

/** Server side: does a client's caching_sha2_password fast-path response prove it knows `password`? */
export function verifyCachingSha2Password(password: string | Buffer, scramble: Buffer, response: Buffer): boolean {
  return constantTimeEqual(scrambleCachingSha2Password(password, scramble), response);
}

/**
 * The password as mysql_clear_password and caching_sha2_password's full authentication over
 * TLS send it: the bytes and a NUL. Only ever over TLS.
 */
export function encodeClearPassword(password: string | Buffer): Buffer {
  const bytes = bytesOf(password);
  if (bytes.includes(0)) throw new RangeError('a clear password cannot contain NUL');
  return Buffer.concat([bytes, Buffer.from([0])]);
}

/** The password in a clear-password response: one trailing NUL dropped (if there), none inside. */
export function decodeClearPassword(data: Buffer): string {
  const bytes = withoutTrailingNul(data);
  if (bytes.includes(0)) throw new MySqlProtocolError('clear password contains NUL');
  return bytes.toString('utf8');
}
