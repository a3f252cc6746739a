/**
 * `broker.audit.on_failure: block` seen from a client: an audit sink whose queue the test fills
 * and empties, and the check that a session is not read while the audit waits.
 */
import { expect } from 'vitest';
import type pg from 'pg';
import type { AuditSink } from '../../src/broker/audit.js';

export interface BlockingAudit {
  readonly sink: AuditSink;
  /** The queries audited so far. */
  readonly audited: string[];
  /** From now on the queue is full: wait() pends until `room()`. */
  fill(): void;
  /** New waits go on at once; those pending still wait for `room()`. */
  pass(): void;
  room(): void;
}

export function blockingAudit(): BlockingAudit {
  const audited: string[] = [];
  let full: Promise<void> | undefined;
  let resolve: (() => void) | undefined;
  return {
    audited,
    sink: {
      queries: true,
      write: (event) => {
        if (event.event === 'query') audited.push(event.query);
        return full === undefined;
      },
      wait: () => full,
      health: () => undefined,
      close: async () => {},
    },
    fill: () => {
      full = new Promise((r) => (resolve = r));
    },
    pass: () => {
      full = undefined;
    },
    room: () => {
      full = undefined;
      resolve?.();
    },
  };
}

/**
 * `held` runs a query while the audit queue is full: it is answered, but the session's next query
 * is not read (nor audited) while another session (`other`, connected before) makes a round trip
 * through the broker; once the queue has room it is.
 */
export async function expectNotReadWhileAuditWaits(audit: BlockingAudit, held: pg.Client, other: pg.Client): Promise<void> {
  try {
    audit.fill();
    // The query that found the queue full is relayed; the client is not read after it.
    expect((await held.query('select 1 as n')).rows[0].n).toBe(1);
    let answered = false;
    const next = held.query('select 2 as n').then((r) => {
      answered = true;
      return r.rows[0].n as number;
    });
    // A round trip of the other session, long after the held client's bytes reached the broker.
    audit.pass();
    expect((await other.query('select 3 as n')).rows[0].n).toBe(3);
    expect(answered).toBe(false);
    expect(audit.audited).not.toContain('select 2 as n');
    audit.room();
    expect(await next).toBe(2);
    expect(audit.audited).toContain('select 2 as n');
  } finally {
    audit.room();
  }
}
