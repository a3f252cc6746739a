/**
 * Random bytes taken from a 4 KiB block filled at once (as Node's randomUUID does), not a call
 * into the CSPRNG per connection; and session ids made from them as flat strings.
 */
import { randomBytes } from 'node:crypto';

let randomPool = Buffer.alloc(0);
let randomOffset = 0;

/** `size` fresh random bytes, a view into the pool's block (copy them to keep them). */
export function pooledRandomBytes(size: number): Buffer {
  if (randomOffset + size > randomPool.length) {
    randomPool = randomBytes(4096);
    randomOffset = 0;
  }
  const bytes = randomPool.subarray(randomOffset, randomOffset + size);
  randomOffset += size;
  return bytes;
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
const uuidText = Buffer.alloc(36);

/**
 * A random (version 4) UUID as one flat string. crypto.randomUUID() builds its string from 16
 * concatenated pieces, ~490 bytes of heap for as long as a session keeps its id and ~800 bytes
 * allocated per connection with the flattening; this writes the text into one buffer and makes
 * one string of it.
 */
export function randomUuid(): string {
  const bytes = pooledRandomBytes(16);
  let at = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) uuidText[at++] = 0x2d; // '-'
    const byte = i === 6 ? (bytes[i]! & 0x0f) | 0x40 : i === 8 ? (bytes[i]! & 0x3f) | 0x80 : bytes[i]!;
    uuidText[at++] = HEX[byte >> 4]!;
    uuidText[at++] = HEX[byte & 0x0f]!;
  }
  return uuidText.toString('latin1');
}
