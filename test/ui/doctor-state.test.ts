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

  it('maps keys: r re-runs, esc goes back, Q and ctrl+c quit', () => {
    expect(doctorKeyToIntent('r', {})).toEqual({ type: 'rerun' });
    expect(doctorKeyToIntent('', { escape: true })).toEqual({ type: 'leave', to: 'back' });
    expect(doctorKeyToIntent('Q', {})).toEqual({ type: 'leave', to: 'quit' });
    expect(doctorKeyToIntent('c', { ctrl: true })).toEqual({ type: 'leave', to: 'quit' });
    expect(doctorKeyToIntent('q', {})).toBeUndefined();
    expect(doctorKeyBar().map((h) => `${h.keys} ${h.label}`).join(' · ')).toBe('r re-run · esc back · Q quit');
  });
});
