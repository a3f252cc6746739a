/**
 * The bounded queue between sessions and the audit output, and what happens when the output
 * cannot keep up or fails (`broker.audit.on_failure`):
 *
 * - `block` (default): once `limitBytes` wait, {@link AuditQueue.wait} holds sessions — new ones
 *   before they relay, relaying ones before they read more from their client — until there is
 *   room again. No line is lost while the output recovers. Lines that sessions already had in
 *   hand when the queue filled still queue, up to BLOCK_OVERFLOW × the limit; past that they are
 *   dropped and counted (it takes thousands of pipelined statements in one read to get there).
 * - `drop`: sessions never wait; a line that does not fit is dropped and counted.
 *
 * A failed write is tried again (the rest of it: nothing is written twice) after a backoff, so a
 * file on a disk that was full recovers by itself. Failures, recovery, a full queue and dropped
 * lines are reported to the observer: {@link AuditObserver.notice} for the log (drops at most
 * once per DROP_NOTICE_MS, as a count), {@link AuditObserver.counted} for metrics.
 */
import type { AuditFailurePolicy } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { AuditWriteError, type AuditOutput } from './audit-output.js';

/** Bytes waiting for the output before `block` holds sessions and `drop` drops lines. */
export const DEFAULT_AUDIT_QUEUE_BYTES = 1024 * 1024;
/** Under `block`, lines written after the queue filled still queue up to this many times the limit. */
const BLOCK_OVERFLOW = 4;
/** One write to the output takes at most this much (always at least one line). */
const BATCH_BYTES = 64 * 1024;
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 5_000;
const DROP_NOTICE_MS = 10_000;
/** How long closing waits for queued lines to be written (a reload, a shutdown). */
const CLOSE_FLUSH_MS = 5_000;

export type AuditNotice =
  | { type: 'failing'; output: string; policy: AuditFailurePolicy; error: string }
  | { type: 'recovered'; output: string; failed_ms: number }
  | { type: 'full'; output: string; policy: AuditFailurePolicy; queued_bytes: number }
  | { type: 'dropped'; output: string; lines: number; total: number };

export interface AuditObserver {
  /** Something a person should read in the log; already rate-limited. */
  notice(notice: AuditNotice): void;
  /** Every dropped line and failed write, for counters. */
  counted?(what: 'dropped_lines' | 'write_errors', n: number): void;
}

export interface AuditHealth {
  output: string;
  policy: AuditFailurePolicy;
  /** `failing`: the last write failed; `full`: the queue is at its limit. */
  state: 'ok' | 'full' | 'failing';
  queued_bytes: number;
  limit_bytes: number;
  dropped_lines: number;
  write_errors: number;
  error?: string;
  failing_since?: string;
}

export interface AuditQueueOptions {
  policy: AuditFailurePolicy;
  /** @default DEFAULT_AUDIT_QUEUE_BYTES */
  limitBytes?: number;
  observer?: AuditObserver;
}

export class AuditQueue {
  private readonly policy: AuditFailurePolicy;
  private readonly limit: number;
  private readonly observer: AuditObserver | undefined;
  private lines: string[] = [];
  /** What is left of a failed write: written first on the next try. */
  private rest: Buffer | undefined;
  private queued = 0;
  private writing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retries = 0;
  private failing: { error: string; since: number } | undefined;
  private fullNoticed = false;
  private waiters: Array<() => void> = [];
  private dropped = 0;
  private writeErrors = 0;
  private droppedSinceNotice = 0;
  private dropNoticeAt = 0;
  private dropNoticeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private flushed: (() => void) | undefined;

  constructor(
    private readonly output: AuditOutput,
    options: AuditQueueOptions,
  ) {
    this.policy = options.policy;
    this.limit = options.limitBytes ?? DEFAULT_AUDIT_QUEUE_BYTES;
    this.observer = options.observer;
  }

  /** Queues one line (with its newline); false when the writer should wait for {@link wait}. */
  push(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    const cap = this.policy === 'block' ? this.limit * BLOCK_OVERFLOW : this.limit;
    if (this.closed || (this.queued > 0 && this.queued + bytes > cap)) {
      this.drop(1);
    } else {
      this.lines.push(line);
      this.queued += bytes;
      this.pump();
    }
    if (this.queued >= this.limit && !this.fullNoticed) {
      this.fullNoticed = true;
      this.observer?.notice({ type: 'full', output: this.output.name, policy: this.policy, queued_bytes: this.queued });
    }
    return !this.holding();
  }

  /** Under `block` while the queue is full: resolves once it has room. Undefined when there is room. */
  wait(): Promise<void> | undefined {
    if (!this.holding()) return undefined;
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  health(): AuditHealth {
    const state = this.failing ? 'failing' : this.queued >= this.limit ? 'full' : 'ok';
    return {
      output: this.output.name,
      policy: this.policy,
      state,
      queued_bytes: this.queued,
      limit_bytes: this.limit,
      dropped_lines: this.dropped,
      write_errors: this.writeErrors,
      ...(this.failing ? { error: this.failing.error, failing_since: new Date(this.failing.since).toISOString() } : {}),
    };
  }

  /**
   * Stops taking lines, writes what is queued (for up to CLOSE_FLUSH_MS while the output works),
   * then closes the output. Sessions held by {@link wait} go on (to the next config's sink).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.release();
    if (this.queued > 0 && !this.failing) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.flushed = resolve;
        timer = setTimeout(resolve, CLOSE_FLUSH_MS);
      });
      clearTimeout(timer);
    }
    clearTimeout(this.retryTimer);
    if (this.queued > 0) {
      const left = this.lines.length + (this.rest ? 1 : 0);
      this.lines = [];
      this.rest = undefined;
      this.queued = 0;
      this.drop(left);
    }
    this.flushDropNotice();
    await this.output.close().catch(() => {});
  }

  private holding(): boolean {
    return this.policy === 'block' && !this.closed && this.queued >= this.limit;
  }

  private pump(): void {
    if (this.writing || this.retryTimer !== undefined || this.queued === 0) return;
    const chunk = this.rest ?? this.batch();
    this.rest = undefined;
    this.writing = true;
    this.output.write(chunk).then(
      () => this.written(chunk.length),
      (error: unknown) => this.failed(chunk, error),
    );
  }

  private batch(): Buffer {
    let size = 0;
    let count = 0;
    while (count < this.lines.length && (count === 0 || size + this.lines[count]!.length <= BATCH_BYTES)) size += this.lines[count++]!.length;
    return Buffer.from(this.lines.splice(0, count).join(''));
  }

  private written(bytes: number): void {
    this.writing = false;
    this.queued -= bytes;
    this.retries = 0;
    if (this.failing) {
      this.observer?.notice({ type: 'recovered', output: this.output.name, failed_ms: Date.now() - this.failing.since });
      this.failing = undefined;
    }
    if (this.queued < this.limit) {
      this.fullNoticed = false;
      this.release();
    }
    if (this.queued === 0) this.flushed?.();
    this.pump();
  }

  private failed(chunk: Buffer, error: unknown): void {
    this.writing = false;
    const written = error instanceof AuditWriteError ? error.written : 0;
    this.queued -= written;
    this.rest = chunk.subarray(written);
    this.writeErrors += 1;
    this.observer?.counted?.('write_errors', 1);
    if (!this.failing) {
      this.failing = { error: errorMessage(error), since: Date.now() };
      this.observer?.notice({ type: 'failing', output: this.output.name, policy: this.policy, error: this.failing.error });
    }
    if (this.closed) {
      this.flushed?.();
      return;
    }
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.retries);
    this.retries += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
    this.retryTimer.unref();
  }

  private release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private drop(lines: number): void {
    this.dropped += lines;
    this.droppedSinceNotice += lines;
    this.observer?.counted?.('dropped_lines', lines);
    const now = Date.now();
    if (now - this.dropNoticeAt >= DROP_NOTICE_MS) {
      this.flushDropNotice();
    } else if (!this.dropNoticeTimer) {
      this.dropNoticeTimer = setTimeout(() => this.flushDropNotice(), DROP_NOTICE_MS - (now - this.dropNoticeAt));
      this.dropNoticeTimer.unref();
    }
  }

  private flushDropNotice(): void {
    clearTimeout(this.dropNoticeTimer);
    this.dropNoticeTimer = undefined;
    if (this.droppedSinceNotice === 0) return;
    this.dropNoticeAt = Date.now();
    this.observer?.notice({ type: 'dropped', output: this.output.name, lines: this.droppedSinceNotice, total: this.dropped });
    this.droppedSinceNotice = 0;
  }
}

/** A notice as one sentence, for people (the JSON log's `message`, a tunnel's stderr). */
export function describeAuditNotice(notice: AuditNotice): string {
  switch (notice.type) {
    case 'failing':
      return notice.policy === 'block'
        ? `audit log ${notice.output} cannot be written (${notice.error}); retrying, and sessions wait once its queue is full (broker.audit.on_failure: block)`
        : `audit log ${notice.output} cannot be written (${notice.error}); retrying, and lines are dropped once the queue is full (broker.audit.on_failure: drop)`;
    case 'recovered':
      return `audit log ${notice.output} is written again after ${Math.round(notice.failed_ms / 1000)} s`;
    case 'full':
      return notice.policy === 'block'
        ? `audit queue for ${notice.output} is full: sessions wait until it takes lines again (broker.audit.on_failure: block)`
        : `audit queue for ${notice.output} is full: lines are dropped until it takes lines again (broker.audit.on_failure: drop)`;
    case 'dropped':
      return `${notice.lines} audit lines for ${notice.output} were dropped (${notice.total} in all)`;
  }
}
