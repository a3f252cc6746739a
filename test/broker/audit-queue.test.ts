/**
 * The audit queue between sessions and the audit output: bounded, with `block` holding writers
 * and `drop` counting what it drops, and failed writes tried again without writing a byte twice.
 * The queue is tested over an output the test completes by hand; the real outputs over /dev/full
 * and a pipe whose reader is gone.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditWriteError, fileOutput, streamOutput, type AuditOutput } from '../../src/broker/audit-output.js';
import { AuditQueue, type AuditNotice } from '../../src/broker/audit-queue.js';

/** An output whose writes wait until the test settles them. */
function handOutput() {
  const calls: Array<{ chunk: Buffer; resolve: () => void; reject: (error: Error) => void }> = [];
  const written: Buffer[] = [];
  const output: AuditOutput = {
    name: 'hand',
    write: (chunk) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ chunk: Buffer.from(chunk), resolve, reject });
      }),
    close: async () => {},
  };
  const next = async () => {
    await expect.poll(() => calls.length, { timeout: 10_000 }).toBeGreaterThan(0);
    return calls.shift()!;
  };
  return {
    output,
    calls,
    text: () => Buffer.concat(written).toString(),
    /** Completes the oldest write. */
    async complete() {
      const call = await next();
      written.push(call.chunk);
      call.resolve();
    },
    /** Fails the oldest write after `bytes` of it were written. */
    async fail(bytes: number, code = 'ENOSPC') {
      const call = await next();
      written.push(call.chunk.subarray(0, bytes));
      call.reject(new AuditWriteError(Object.assign(new Error(`${code}: no space left on device, write`), { code }), bytes));
    },
  };
}

const line = (n: number, size = 100): string => `${JSON.stringify({ n, pad: 'x'.repeat(size) })}\n`;

function recorder() {
  const notices: AuditNotice[] = [];
  const counted = { dropped_lines: 0, write_errors: 0 };
  return { notices, counted, observer: { notice: (n: AuditNotice) => notices.push(n), counted: (what: keyof typeof counted, n: number) => (counted[what] += n) } };
}

describe('AuditQueue', () => {
  it('under block, holds writers once the limit is queued and lets them go when the output catches up, losing nothing', async () => {
    const hand = handOutput();
    const { notices, observer, counted } = recorder();
    const queue = new AuditQueue(hand.output, { policy: 'block', limitBytes: 1000, observer });
    let room = true;
    let n = 0;
    while (room) room = queue.push(line((n += 1)));
    expect(n).toBeGreaterThan(5);
    expect(queue.health()).toMatchObject({ state: 'full', policy: 'block', dropped_lines: 0 });
    expect(notices).toEqual([expect.objectContaining({ type: 'full', policy: 'block' })]);
    const waiting = queue.wait();
    expect(waiting).toBeInstanceOf(Promise);
    let released = false;
    void waiting!.then(() => (released = true));
    // Lines a session had in hand when the queue filled still queue.
    expect(queue.push(line((n += 1)))).toBe(false);
    while (hand.calls.length > 0 || queue.health().queued_bytes > 0) await hand.complete();
    await waiting;
    expect(released).toBe(true);
    expect(queue.wait()).toBeUndefined();
    expect(hand.text().trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(counted.dropped_lines).toBe(0);
  });

  it('under block, bounds what sessions still write after it filled, and counts the overflow', () => {
    const hand = handOutput();
    const { observer, counted } = recorder();
    const queue = new AuditQueue(hand.output, { policy: 'block', limitBytes: 1000, observer });
    for (let n = 0; n < 200; n += 1) queue.push(line(n));
    expect(queue.health().queued_bytes).toBeLessThanOrEqual(4000);
    expect(counted.dropped_lines).toBeGreaterThan(150);
  });

  it('under drop, never holds a writer: it drops what does not fit, counts every line, and logs the count at most every 10 s', () => {
    const hand = handOutput();
    const { notices, observer, counted } = recorder();
    const queue = new AuditQueue(hand.output, { policy: 'drop', limitBytes: 1000, observer });
    for (let n = 0; n < 500; n += 1) expect(queue.push(line(n))).toBe(true);
    expect(queue.wait()).toBeUndefined();
    const health = queue.health();
    expect(health.queued_bytes).toBeLessThanOrEqual(1000);
    expect(health.dropped_lines).toBe(counted.dropped_lines);
    expect(health.dropped_lines).toBeGreaterThan(490);
    // The first drop is told at once; the rest wait for the next notice.
    expect(notices.filter((x) => x.type === 'dropped')).toEqual([{ type: 'dropped', output: 'hand', lines: 1, total: 1 }]);
  });

  it('tries a failed write again from where it stopped, reports the failure once and the recovery', async () => {
    const hand = handOutput();
    const { notices, observer, counted } = recorder();
    const queue = new AuditQueue(hand.output, { policy: 'block', limitBytes: 100_000, observer });
    for (let n = 1; n <= 3; n += 1) queue.push(line(n));
    await hand.fail(10);
    expect(queue.health()).toMatchObject({ state: 'failing', error: 'ENOSPC: no space left on device, write', write_errors: 1 });
    await hand.fail(0);
    while (queue.health().queued_bytes > 0) await hand.complete();
    expect(hand.text()).toBe(line(1) + line(2) + line(3));
    expect(queue.health()).toMatchObject({ state: 'ok', write_errors: 2 });
    expect(counted.write_errors).toBe(2);
    expect(notices.map((x) => x.type)).toEqual(['failing', 'recovered']);
  });

  it('on close, releases held writers and counts the lines it could not write', async () => {
    const hand = handOutput();
    const { observer, counted } = recorder();
    const queue = new AuditQueue(hand.output, { policy: 'block', limitBytes: 500, observer });
    while (queue.push(line(1))) {
      // fill it
    }
    const waiting = queue.wait()!;
    await hand.fail(0, 'EPIPE');
    await queue.close();
    await waiting;
    expect(counted.dropped_lines).toBeGreaterThan(0);
    expect(queue.push(line(2))).toBe(true);
  });
});

describe('audit outputs', () => {
  it('a file on a full disk (/dev/full) fails the write with ENOSPC instead of throwing', async () => {
    const output = fileOutput('/dev/full');
    await expect(output.write(Buffer.from(line(1)))).rejects.toMatchObject({ name: 'AuditWriteError', written: 0, message: expect.stringContaining('ENOSPC') });
    await output.close();
  });

  it('a file is appended to with mode 0600', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'azdb-audit-')), 'deep', 'audit.jsonl');
    const output = fileOutput(path);
    await output.write(Buffer.from(line(1)));
    await output.write(Buffer.from(line(2)));
    await output.close();
    expect(await readFile(path, 'utf8')).toBe(line(1) + line(2));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('a path that cannot be opened is a config error naming broker.audit.path', () => {
    expect(() => fileOutput('/etc/hostname/audit.jsonl')).toThrow(/^cannot open the audit log \/etc\/hostname\/audit\.jsonl: E(EXIST|NOTDIR)$/);
  });

  it('a pipe whose reader went away fails the write with EPIPE, and the process lives on', async () => {
    // The reader closes its end of the pipe and lives on: writes succeed until then, then EPIPE.
    const reader = spawn('sh', ['-c', 'exec 0<&-; exec sleep 60'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      const output = streamOutput(reader.stdin, 'pipe');
      let failure: unknown;
      for (let n = 0; failure === undefined && n < 100_000; n += 1) await output.write(Buffer.from(line(n))).catch((error: unknown) => (failure = error));
      expect(failure).toMatchObject({ name: 'AuditWriteError', message: expect.stringContaining('EPIPE') });
      await expect(output.write(Buffer.from(line(0)))).rejects.toMatchObject({ name: 'AuditWriteError' });
    } finally {
      reader.kill();
    }
  });
});
