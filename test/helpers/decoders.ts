/** Feeding the codec's streaming decoders (FrameDecoder, PacketDecoder) from tests. */

interface Decoder<T> {
  push(chunk: Buffer): void;
  next(): T | undefined;
}

/** Pushes `chunk` and returns every unit it completes, in order (payloads as the decoder gives them). */
export function drain<T>(decoder: Decoder<T>, chunk: Buffer): T[] {
  decoder.push(chunk);
  const out: T[] = [];
  for (let unit = decoder.next(); unit !== undefined; unit = decoder.next()) out.push(unit);
  return out;
}

/** `bytes` cut at the given offsets: [0, a), [a, b), … [last, end). */
export function splitAt(bytes: Buffer, ...offsets: number[]): Buffer[] {
  const cuts = [0, ...offsets, bytes.length];
  return cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end));
}

/** `bytes` in chunks of `size` bytes. */
export function chunked(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}
