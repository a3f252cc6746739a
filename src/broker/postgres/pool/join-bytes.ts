/**
 * Several buffers as one, for one socket write: when they are consecutive views of the same
 * memory (the messages of one client or server chunk that pass unchanged) the view that spans
 * them, as the bytes came in; otherwise a copy.
 */
export function joinBytes(parts: readonly Buffer[]): Buffer {
  const first = parts[0];
  if (first === undefined) return Buffer.alloc(0);
  let end = first.byteOffset + first.length;
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (part.buffer !== first.buffer || part.byteOffset !== end) return Buffer.concat(parts);
    end += part.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}
