import { describe, expect, it } from 'vitest';
import {
  initialQueriesState,
  outcomeLine,
  queriesHelpRows,
  queriesKeyBar,
  queriesKeyToIntent,
  queriesMode,
  queriesReducer,
  selectedSession,
  sessionSummary,
  type QueriesAction,
  type QueriesScreenState,
} from '../../src/ui/queries/state.js';
import { formatDuration } from '../../src/format.js';
import { session } from './fake-api.js';

const run = (state: QueriesScreenState, ...actions: QueriesAction[]) => actions.reduce(queriesReducer, state);
const AT = '2025-01-01T12:00:03.000Z';
const SESSIONS = [session(101, { state: 'active', query: 'select pg_sleep(60)', durationMs: 42_000 }), session(102), session(103, { user: 'bob' })];

function listed(sessions = SESSIONS): QueriesScreenState {
  return run(initialQueriesState('orders', { dbUser: 'azdb-demo', dbName: 'orders' }), { type: 'connected', login: { dbUser: 'azdb-demo', dbName: 'orders' } }, { type: 'listed', sessions, at: AT });
}

describe('queries screen state', () => {
  it('logs in, then lists', () => {
    let state = initialQueriesState('orders', { dbUser: 'azdb-demo', dbName: 'orders' });
    expect(state.connection).toBe('connecting');
    expect(state.listRequest).toBe(0);
    state = run(state, { type: 'connected', login: { dbUser: 'azdb-demo', dbName: 'orders' } });
    expect(state.connection).toBe('open');
    expect(state.listRequest).toBe(1);
    expect(state.listing).toBe(true);
    state = run(state, { type: 'listed', sessions: SESSIONS, at: AT });
    expect(state.loaded).toBe(true);
    expect(state.listing).toBe(false);
    expect(state.listedAt).toBe('12:00:03');
    expect(selectedSession(state)?.pid).toBe(101);
  });

  it('refreshes once at a time: a refresh during a listing lists again after it', () => {
    let state = run(listed(), { type: 'refresh', auto: true });
    expect(state.listRequest).toBe(2);
    state = run(state, { type: 'refresh' });
    expect(state.listRequest).toBe(2);
    expect(state.stale).toBe(true);
    state = run(state, { type: 'listed', sessions: SESSIONS, at: AT });
    expect(state.listRequest).toBe(3);
    expect(state.listing).toBe(true);
  });

  it('keeps the selection on the same pid across refreshes, and clamps when it is gone', () => {
    let state = run(listed(), { type: 'move', delta: 1 });
    expect(state.selectedPid).toBe(102);
    state = run(state, { type: 'refresh' }, { type: 'listed', sessions: [session(99), ...SESSIONS], at: AT });
    expect(selectedSession(state)?.pid).toBe(102);
    expect(state.cursor).toBe(2);
    state = run(state, { type: 'refresh' }, { type: 'listed', sessions: [session(99)], at: AT });
    expect(selectedSession(state)?.pid).toBe(99);
    state = run(state, { type: 'move', delta: 5 }, { type: 'move', delta: -Infinity });
    expect(state.cursor).toBe(0);
  });

  it('cancels the selected session right away', () => {
    let state = run(listed(), { type: 'request-act', action: 'cancel' });
    expect(state.act).toEqual({ action: 'cancel', pid: 101, summary: 'azdb-demo · select pg_sleep(60)', phase: 'running' });
    state = run(state, { type: 'request-act', action: 'terminate' }); // one at a time
    expect(state.act?.action).toBe('cancel');
    const before = state.listRequest;
    state = run(state, { type: 'acted', outcome: { status: 'done', message: 'the running query of pid 101 was cancelled' } });
    expect(state.act).toBeUndefined();
    expect(outcomeLine(state.outcome!)).toBe('Done: the running query of pid 101 was cancelled.');
    expect(state.listRequest).toBe(before + 1); // lists again to show it
  });

  it('terminates only after y; n or esc keeps the session', () => {
    let state = run(listed(), { type: 'move', delta: 2 }, { type: 'request-act', action: 'terminate' });
    expect(state.act).toMatchObject({ action: 'terminate', pid: 103, phase: 'confirm' });
    expect(queriesMode(state)).toBe('confirm');
    expect(queriesKeyBar(state).map((h) => `${h.keys} ${h.label}`)).toEqual(['y terminate', 'n keep it']);
    expect(queriesKeyToIntent(state, 'n', {})).toEqual({ type: 'deny' });
    expect(queriesKeyToIntent(state, '', { escape: true })).toEqual({ type: 'deny' });
    expect(queriesKeyToIntent(state, 'j', {})).toBeUndefined();
    expect(run(state, { type: 'deny' }).act).toBeUndefined();
    expect(run(state, { type: 'move', delta: -1 }).cursor).toBe(2); // no moving while asked
    expect(queriesKeyToIntent(state, 'y', {})).toEqual({ type: 'confirm' });
    state = run(state, { type: 'confirm' });
    expect(state.act?.phase).toBe('running');
    state = run(state, { type: 'acted', outcome: { status: 'refused', message: 'bob may not terminate pid 103: permission denied', hint: 'grant pg_signal_backend' } });
    expect(state.outcome).toMatchObject({ status: 'refused', hint: 'grant pg_signal_backend', action: 'terminate', pid: 103 });
    expect(outcomeLine(state.outcome!)).toBe('Refused: bob may not terminate pid 103: permission denied');
  });

  it('shows a failed cancel (lost connection) as refused with its hint', () => {
    const state = run(listed(), { type: 'request-act', action: 'cancel' }, { type: 'act-failed', error: { message: 'connection lost', hint: 'r logs in again' } });
    expect(state.outcome).toMatchObject({ status: 'refused', message: 'connection lost', hint: 'r logs in again' });
  });

  it('does nothing without a selected session', () => {
    const state = run(listed([]), { type: 'request-act', action: 'cancel' });
    expect(state.act).toBeUndefined();
  });

  it('logs in again with r after a failed login, not on the timer', () => {
    let state = run(initialQueriesState('orders', { dbUser: 'u', dbName: 'd' }), { type: 'connect-failed', error: { message: 'no token' } });
    expect(state.connection).toBe('failed');
    expect(run(state, { type: 'refresh', auto: true })).toBe(state);
    state = run(state, { type: 'refresh' });
    expect(state.connection).toBe('connecting');
    expect(state.connect).toBe(2);
    expect(state.error).toBeUndefined();
  });

  it('keeps the list it has when a listing fails, with the error', () => {
    const state = run(listed(), { type: 'refresh' }, { type: 'list-failed', error: { message: 'timeout' } });
    expect(state.sessions).toHaveLength(3);
    expect(state.error?.message).toBe('timeout');
    expect(state.listing).toBe(false);
  });

  it('maps keys: c cancel, T terminate, k and j move, r refresh, ? help, esc back, Q quit', () => {
    const state = listed();
    expect(queriesKeyToIntent(state, 'c', {})).toEqual({ type: 'request-act', action: 'cancel' });
    expect(queriesKeyToIntent(state, 'T', { shift: true })).toEqual({ type: 'request-act', action: 'terminate' });
    expect(queriesKeyToIntent(state, 'k', {})).toEqual({ type: 'move', delta: -1 });
    expect(queriesKeyToIntent(state, '?', {})).toEqual({ type: 'toggle-help' });
    expect(queriesKeyToIntent(state, 'r', {})).toEqual({ type: 'refresh' });
    expect(queriesKeyToIntent(state, 'j', {})).toEqual({ type: 'move', delta: 1 });
    expect(queriesKeyToIntent(state, '', { upArrow: true })).toEqual({ type: 'move', delta: -1 });
    expect(queriesKeyToIntent(state, '', { escape: true })).toEqual({ type: 'leave', to: 'back' });
    expect(queriesKeyToIntent(state, 'Q', {})).toEqual({ type: 'leave', to: 'quit' });
    expect(queriesKeyToIntent(state, 'c', { ctrl: true })).toEqual({ type: 'leave', to: 'quit' });
    expect(queriesKeyToIntent(state, 'q', {})).toBeUndefined();
    expect(queriesKeyToIntent(state, '', { return: true })).toEqual({ type: 'open-detail' });
    expect(queriesKeyToIntent(state, 'v', {})).toEqual({ type: 'open-detail' });
    // Fits 80 columns; the long labels are in `?`.
    const bar = queriesKeyBar(state).map((h) => `${h.keys} ${h.label}`).join(' · ');
    expect(bar).toBe('c cancel · T terminate · enter details · r refresh · ? help · esc back · Q quit');
    expect(bar.length).toBeLessThanOrEqual(80);
  });

  it('shows the selected session whole on enter: every column and the query with its line breaks; esc or q closes it', () => {
    const long = `select o.id, c.name\nfrom orders o join customers c on c.id = o.customer_id\nwhere ${'o.status = \'shipped\' and '.repeat(12)}true`;
    let state = listed([session(101, { query: long, state: 'active: Sending data to the client', durationMs: 42_000 }), session(102)]);
    state = run(state, { type: 'open-detail' });
    expect(queriesMode(state)).toBe('detail');
    expect(state.detail?.title).toBe('Session 101, as listed at 12:00:03');
    expect(state.detail?.text).toBe(['pid      101', 'user     azdb-demo', 'database orders', 'state    active: Sending data to the client', 'duration 42 s', '', long].join('\n'));
    // Keys of the details view: scrolling within the text, never past its end.
    const viewport = { width: 40, height: 5 };
    expect(queriesKeyToIntent(state, 'j', {}, 10, viewport)).toEqual({ type: 'scroll-detail', delta: 1, viewport });
    expect(queriesKeyToIntent(state, 'c', {}, 10, viewport)).toBeUndefined(); // no cancel behind it
    state = run(state, { type: 'scroll-detail', delta: Infinity, viewport });
    const lines = state.detail!.scroll;
    expect(lines).toBeGreaterThan(5);
    expect(run(state, { type: 'scroll-detail', delta: 1, viewport }).detail!.scroll).toBe(lines);
    expect(run(state, { type: 'scroll-detail', delta: -Infinity, viewport }).detail!.scroll).toBe(0);
    // A refresh keeps the selection on its pid (and the details as they were opened).
    const refreshed = run(state, { type: 'refresh' }, { type: 'listed', sessions: [session(100), session(102), session(101, { query: 'select 2' })], at: AT });
    expect(selectedSession(refreshed)?.pid).toBe(101);
    expect(refreshed.detail?.text).toContain('o.status');
    expect(queriesKeyToIntent(refreshed, 'q', {}, 10, viewport)).toEqual({ type: 'close-detail' });
    expect(queriesKeyToIntent(refreshed, '', { escape: true }, 10, viewport)).toEqual({ type: 'close-detail' });
    expect(queriesKeyToIntent(refreshed, 'Q', {}, 10, viewport)).toEqual({ type: 'leave', to: 'quit' });
    const closed = run(refreshed, { type: 'close-detail' });
    expect(queriesMode(closed)).toBe('list');
    expect(selectedSession(closed)?.pid).toBe(101);
    // ? over the details, and back to them.
    const help = run(refreshed, { type: 'toggle-help' });
    expect(queriesMode(help)).toBe('help');
    expect(queriesMode(run(help, { type: 'toggle-help' }))).toBe('detail');
  });

  it('opens no details without a session', () => {
    expect(run(listed([]), { type: 'open-detail' }).detail).toBeUndefined();
  });

  it('shows every key on ?, and ? or esc goes back to the table', () => {
    const help = run(listed(), { type: 'toggle-help' });
    expect(queriesMode(help)).toBe('help');
    expect(queriesKeyToIntent(help, '', { escape: true })).toEqual({ type: 'toggle-help' });
    expect(queriesKeyToIntent(help, 'c', {})).toBeUndefined(); // nothing acts behind the help
    expect(queriesHelpRows().map((r) => `${r.keys} ${r.label}`)).toEqual(expect.arrayContaining(['c cancel query', 'T terminate session', 'enter/v details', '↑/k/ctrl+p up', 'y/Y confirm terminate']));
    expect(queriesMode(run(help, { type: 'toggle-help' }))).toBe('list');
  });

  it('formats durations and summaries', () => {
    expect(formatDuration(null)).toBe('');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(42_000)).toBe('42 s');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
    expect(formatDuration(7_800_000)).toBe('2 h 10 min');
    expect(sessionSummary(session(1, { user: null, query: 'select\n  1' }))).toBe('? · select 1');
    expect(sessionSummary(session(1, { query: 'x'.repeat(80) }))).toMatch(/^azdb-demo · x{59}…$/);
  });
});
