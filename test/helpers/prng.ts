/** A small seeded PRNG (mulberry32) so random test inputs can be replayed from a printed seed. */
export interface Prng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  bytes(n: number): Buffer;
  pick<T>(items: readonly T[]): T;
}

export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    seed,
    next,
    int,
    bytes(n) {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
    pick: (items) => items[int(items.length)]!,
  };
}

/** The seed from `name` in the environment, else a fresh one; printed so a failure can be replayed. */
export function seedFromEnv(name: string): number {
  const given = process.env[name];
  const seed = given !== undefined && given !== '' ? Number(given) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  console.log(`${name}=${seed} (set it to replay this run)`);
  return seed;
}

/**
 * Mutates a well-formed byte stream a few random ways (flip, set, truncate, insert, delete,
 * repeat, append), plus `hugeHeader` — a protocol's own "length says 2 GiB" header — appended
 * now and then. Each change is named in `ops` so a failing case says what it was.
 */
export function mutateBytes(prng: Prng, input: Buffer, ops: string[], hugeHeader: () => Buffer): Buffer {
  let bytes = input;
  const rounds = prng.int(3);
  for (let r = 0; r < rounds; r++) {
    const at = prng.int(bytes.length + 1);
    switch (prng.int(8)) {
      case 0:
        if (bytes.length > 0) {
          bytes[Math.min(at, bytes.length - 1)]! ^= 1 << prng.int(8);
          ops.push(`flip(${at})`);
        }
        break;
      case 1:
        if (bytes.length > 0) {
          bytes[Math.min(at, bytes.length - 1)] = prng.int(256);
          ops.push(`set(${at})`);
        }
        break;
      case 2:
        bytes = bytes.subarray(0, at);
        ops.push(`truncate(${at})`);
        break;
      case 3: {
        const n = 1 + prng.int(64);
        bytes = Buffer.concat([bytes.subarray(0, at), prng.bytes(n), bytes.subarray(at)]);
        ops.push(`insert(${at},${n})`);
        break;
      }
      case 4: {
        const n = 1 + prng.int(16);
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + n)]);
        ops.push(`delete(${at},${n})`);
        break;
      }
      case 5: {
        const n = 1 + prng.int(32);
        const times = 1 + prng.int(prng.int(10) === 0 ? 500 : 4);
        const piece = bytes.subarray(at, at + n);
        bytes = Buffer.concat([bytes.subarray(0, at), ...Array.from({ length: times }, () => piece), bytes.subarray(at)]);
        ops.push(`repeat(${at},${n}x${times})`);
        break;
      }
      case 6:
        bytes = Buffer.concat([bytes, hugeHeader()]);
        ops.push('huge-header');
        break;
      default: {
        const n = 1 + prng.int(256);
        bytes = Buffer.concat([bytes, prng.bytes(n)]);
        ops.push(`append(${n})`);
      }
    }
  }
  return bytes;
}
