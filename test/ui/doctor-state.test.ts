import { describe, expect, it } from 'vitest';
import { doctorKeyBar, doctorKeyToIntent, doctorReducer, doctorRows, doctorSummary, initialDoctorState, STATUS_MARK, type DoctorAction, type DoctorScreenState } from '../../src/ui/doctor/state.js';
import { check, DOCTOR_PLAN } from './fake-api.js';

const run = (state: DoctorScreenState, ...actions: DoctorAction[]) => actions.reduce(doctorReducer, state);
const fresh = () => initialDoctorState('orders', DOCTOR_PLAN);

describe('doctor screen state', () => {
  it('starts running with every planned check waiting but the first, which runs', () => {
    const state = fresh();
    expect(state.running).toBe(true);
    expect(doctorRows(state).map((r) => r.kind)).toEqual(['running', 'waiting', 'waiting', 'waiting']);
    expect(doctorSummary(state)).toBe('Checking orders: 0 of 4 checks done…');
  });

  it('takes results as they stream in; the next check is the running one', () => {
    const state = run(fresh(), { type: 'result', run: 1, check: check('config', 'pass', 'ok') }, { type: 'result', run: 1, check: check('credential', 'warn', 'slow', 'Run `azdb creds`.') });
    expect(doctorRows(state).map((r) => r.kind)).toEqual(['result', 'result', 'running', 'waiting']);
    expect(doctorSummary(state)).toBe('Checking orders: 2 of 4 checks done…');
  });

  it('sums up: no problems, or which checks failed, and the warnings', () => {
    const ok = run(
      fresh(),
      ...DOCTOR_PLAN.map((p): DoctorAction => ({ type: 'result', run: 1, check: check(p.id, 'pass', 'fine') })),
      { type: 'finished', run: 1, ok: true },
    );
    expect(ok.running).toBe(false);
    expect(doctorRows(ok).every((r) => r.kind === 'result')).toBe(true);
    expect(doctorSummary(ok)).toBe('No problems found with orders.');
    const bad = run(
      fresh(),
      { type: 'result', run: 1, check: check('config', 'warn', 'old key') },
      { type: 'result', run: 1, check: check('credential', 'pass', 'mi') },
      { type: 'result', run: 1, check: check('tcp', 'fail', 'refused', 'Open the firewall.') },
      { type: 'result', run: 1, check: check('login', 'skip', 'not run: needs a TCP connection') },
      { type: 'finished', run: 1, ok: false },
    );
    expect(doctorSummary(bad)).toBe('1 check failed: TCP connect. 1 warning.');
  });

  it('re-runs with r: results cleared, results of the old run ignored', () => {
    let state = run(fresh(), { type: 'result', run: 1, check: check('config', 'fail', 'no file') }, { type: 'rerun' });
    expect(state.run).toBe(2);
    expect(state.results).toEqual([]);
    expect(state.running).toBe(true);
    state = run(state, { type: 'result', run: 1, check: check('credential', 'pass', 'late') }, { type: 'finished', run: 1, ok: false });
    expect(state.results).toEqual([]);
    expect(state.running).toBe(true);
    state = run(state, { type: 'result', run: 2, check: check('config', 'pass', 'ok') });
    expect(state.results.map((r) => r.id)).toEqual(['config']);
  });

  it('shows a doctor that could not run', () => {
    const state = run(fresh(), { type: 'failed', run: 1, error: { message: 'boom', hint: 'AZDB_DEBUG=1' } });
    expect(state.running).toBe(false);
    expect(doctorSummary(state)).toBe('The doctor could not run: boom');
    expect(doctorRows(state).map((r) => r.kind)).toEqual(['waiting', 'waiting', 'waiting', 'waiting']);
  });

  it('has markers that read without colour', () => {
    expect(Object.values(STATUS_MARK)).toEqual(['✓ PASS', '! WARN', '✗ FAIL', '- SKIP']);
  });

  const VIEW = { width: 40, height: 4 };

  it('maps keys: r re-runs, ↑↓ select a check, enter or v shows it whole, ? help, esc goes back, Q and ctrl+c quit', () => {
    const state = fresh();
    expect(doctorKeyToIntent(state, 'r', {}, VIEW)).toEqual({ type: 'rerun' });
    expect(doctorKeyToIntent(state, 'j', {}, VIEW)).toEqual({ type: 'move', delta: 1 });
    expect(doctorKeyToIntent(state, '', { upArrow: true }, VIEW)).toEqual({ type: 'move', delta: -1 });
    expect(doctorKeyToIntent(state, '', { return: true }, VIEW)).toEqual({ type: 'open-detail' });
    expect(doctorKeyToIntent(state, 'v', {}, VIEW)).toEqual({ type: 'open-detail' });
    expect(doctorKeyToIntent(state, '?', {}, VIEW)).toEqual({ type: 'toggle-help' });
    expect(doctorKeyToIntent(state, '', { escape: true }, VIEW)).toEqual({ type: 'leave', to: 'back' });
    expect(doctorKeyToIntent(state, 'Q', {}, VIEW)).toEqual({ type: 'leave', to: 'quit' });
    expect(doctorKeyToIntent(state, 'c', { ctrl: true }, VIEW)).toEqual({ type: 'leave', to: 'quit' });
    expect(doctorKeyToIntent(state, 'q', {}, VIEW)).toBeUndefined();
    expect(doctorKeyBar(state).map((h) => `${h.keys} ${h.label}`).join(' · ')).toBe('enter details · r re-run · ↑↓ move · ? help · esc back · Q quit');
    const help = run(state, { type: 'toggle-help' });
    expect(doctorKeyToIntent(help, 'r', {}, VIEW)).toBeUndefined(); // nothing acts behind the help
    expect(doctorKeyToIntent(help, '', { escape: true }, VIEW)).toEqual({ type: 'toggle-help' });
  });

  it('shows the selected check whole: its status, everything it found and the hint; the selection stays on its check across a re-run', () => {
    const long = `certificate chain of orders.postgres.database.azure.com: ${'intermediate CA '.repeat(10)}END`;
    let state = run(
      fresh(),
      { type: 'result', run: 1, check: check('config', 'pass', 'ok') },
      { type: 'result', run: 1, check: check('credential', 'pass', long, 'Put the CA bundle in tls.ca_file.') },
      { type: 'move', delta: 1 },
    );
    expect(state.selected).toBe('credential');
    // A row still waiting has nothing to show.
    expect(run(state, { type: 'move', delta: 1 }, { type: 'open-detail' }).detail).toBeUndefined();
    state = run(state, { type: 'open-detail' });
    expect(state.detail).toEqual({ title: 'Entra credential · orders', text: `✓ PASS  ${long}\n\nhint: Put the CA bundle in tls.ca_file.`, scroll: 0 });
    expect(doctorKeyBar(state).map((h) => h.label)).toContain('scroll');
    expect(doctorKeyToIntent(state, 'j', {}, VIEW)).toEqual({ type: 'scroll-detail', delta: 1, viewport: VIEW });
    expect(doctorKeyToIntent(state, 'r', {}, VIEW)).toBeUndefined();
    state = run(state, { type: 'scroll-detail', delta: Infinity, viewport: VIEW });
    expect(state.detail!.scroll).toBeGreaterThan(0);
    expect(doctorKeyToIntent(state, 'q', {}, VIEW)).toEqual({ type: 'close-detail' });
    state = run(state, { type: 'close-detail' }, { type: 'rerun' });
    expect(state.detail).toBeUndefined();
    expect(state.selected).toBe('credential');
    expect(doctorRows(state)[1]).toMatchObject({ kind: 'waiting', id: 'credential' });
    expect(run(state, { type: 'move', delta: -Infinity }).selected).toBe('config');
    expect(run(state, { type: 'move', delta: Infinity }).selected).toBe('login');
  });
});
