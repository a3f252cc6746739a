/**
 * The last two steps every broker session shares, whatever the protocol: relaying bytes both ways
 * with backpressure once the login is done, and hanging up on a refused client so that it reads
 * its error before the connection goes away.
 */
import type { Socket } from 'node:net';

/** How long a refused client may keep the connection open after its error is sent. */
const HANG_UP_LINGER_MS = 1_000;

/**
 * Sends the last message, half-closes, and discards what the client still sends until it closes
 * (or the linger runs out). Closing a socket with unread input makes the kernel answer with a
 * reset, and a reset can overtake the error, so the client would never learn why it was refused.
 */
export function hangUp(socket: Socket, last: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, HANG_UP_LINGER_MS);
    function done(): void {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    }
    socket.once('close', done);
    socket.on('data', () => {});
    socket.resume();
    socket.end(last);
  });
}

/**
 * The client→server filter of a relay: given each chunk, returns the bytes to pass on (the chunk
 * itself, views into it, or nothing). It runs synchronously on the 'data' path — a stream
 * Transform would add a hop per message — and calls `fail` to end the session on input it cannot
 * accept.
 */
export type RelayFilter = (chunk: Buffer) => Buffer | readonly Buffer[];
export type RelayTap = (fail: (message: string) => void) => RelayFilter;

/** After a chunk the tap took: a promise while the audit queue is full under `on_failure: block`. */
export type RelayHold = () => Promise<void> | undefined;

/**
 * The audit hold of a relay whose client is paused and resumed for other reasons too: `after()`
 * follows each chunk the tap took, pausing the client while the hold's promise is pending; once it
 * resolves the client is resumed if `mayResume()` (the relay's own reasons to pause are gone). The
 * relay's own resumes ask `held` first.
 */
export function clientHold(client: Socket, hold: RelayHold | undefined, mayResume: () => boolean): { readonly held: boolean; after(): void } {
  let held = false;
  return {
    get held() {
      return held;
    },
    after() {
      const waiting = held ? undefined : hold?.();
      if (!waiting) return;
      held = true;
      client.pause();
      void waiting.then(() => {
        held = false;
        if (mayResume()) client.resume();
      });
    },
  };
}

/**
 * Pipes both ways until either side ends; resolves with how it ended. `early` holds client bytes
 * read past the login; they go first, through the tap when there is one. After each chunk the tap
 * took, `hold` may return a promise (the audit queue is full under `on_failure: block`): the
 * client is not read until it resolves.
 */
export function relay(client: Socket, upstream: Socket, early: Buffer, tap?: RelayTap, hold?: RelayHold): Promise<{ error?: string }> {
  return new Promise((resolve) => {
    let done = false;
    const end = (error?: string) => {
      if (done) return;
      done = true;
      client.destroy();
      upstream.destroy();
      resolve(error ? { error } : {});
    };
    client.on('error', (e) => end(`client: ${e.message}`));
    upstream.on('error', (e) => end(`upstream: ${e.message}`));
    client.on('close', () => end());
    upstream.on('close', () => end());
    // A side that went away while the upstream login ran has already emitted its 'close'.
    if (client.destroyed || upstream.destroyed) {
      end();
      return;
    }
    upstream.setNoDelay(true);
    upstream.pipe(client);
    const filter = tap?.((message) => end(message));
    if (!filter) {
      if (early.length > 0) upstream.write(early);
      client.pipe(upstream);
      client.resume();
      return;
    }
    // The client is read while the upstream takes bytes and nothing holds it.
    let upstreamFull = false;
    const audit = clientHold(client, hold, () => !upstreamFull && !done);
    const forward = (chunk: Buffer): void => {
      const out = filter(chunk);
      if (done) return;
      let flowing = true;
      if (Buffer.isBuffer(out)) flowing = upstream.write(out);
      else for (const part of out) flowing = upstream.write(part);
      if (!flowing) {
        upstreamFull = true;
        client.pause();
      }
      audit.after();
    };
    upstream.on('drain', () => {
      upstreamFull = false;
      if (!audit.held) client.resume();
    });
    client.on('end', () => upstream.end());
    client.on('data', forward);
    if (early.length > 0) forward(early);
    client.resume();
  });
}
