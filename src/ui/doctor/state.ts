/**
 * The doctor screen's state, its pure reducer and its keys. The checks of `azdb doctor NAME`
 * arrive one by one (`result`) for the run they belong to; `r` starts a new run (the hook aborts
 * the old one), and results of an older run are ignored.
 */
import type { TuiCheck, TuiCheckStatus, TuiErrorInfo } from '../../core/api/picker.js';
import { bindingLabel, Command, KEY_BINDINGS, matchCommand, type KeyPress } from '../keys.js';
import { textLines } from '../layout.js';

export interface DoctorScreenState {
  name: string;
  /** The checks in the order they run (rows exist before their results). */
  plan: Array<{ id: string; title: string }>;
  results: TuiCheck[];
  /** Bumped by every (re-)run: the hook starts the doctor when it changes. */
  run: number;
  running: boolean;
  /** When the run finished: false when a check failed. */
  ok: boolean | undefined;
  /** The doctor itself could not run (never a failing check: that is a result). */
  error: TuiErrorInfo | undefined;
}

export type DoctorAction =
  | { type: 'result'; run: number; check: TuiCheck }
  | { type: 'finished'; run: number; ok: boolean }
  | { type: 'failed'; run: number; error: TuiErrorInfo }
  | { type: 'rerun' };

/** What a key asks for: a state change, or leaving the screen (back to the list, or quit). */
export type DoctorIntent = DoctorAction | { type: 'leave'; to: 'back' | 'quit' };

export function initialDoctorState(name: string, plan: Array<{ id: string; title: string }>): DoctorScreenState {
  return { name, plan, results: [], run: 1, running: true, ok: undefined, error: undefined };
}

export function doctorReducer(state: DoctorScreenState, action: DoctorAction): DoctorScreenState {
  switch (action.type) {
    case 'result':
      if (action.run !== state.run) return state;
      return { ...state, results: [...state.results.filter((r) => r.id !== action.check.id), action.check] };
    case 'finished':
      if (action.run !== state.run) return state;
      return { ...state, running: false, ok: action.ok };
    case 'failed':
      if (action.run !== state.run) return state;
      return { ...state, running: false, ok: false, error: action.error };
    case 'rerun':
      return { ...state, run: state.run + 1, results: [], running: true, ok: undefined, error: undefined };
  }
}

/** The row of each planned check: its result, running (the first without one while running), or waiting. */
export type DoctorRow =
  | { kind: 'result'; check: TuiCheck }
  | { kind: 'running'; id: string; title: string }
  | { kind: 'waiting'; id: string; title: string };

export function doctorRows(state: DoctorScreenState): DoctorRow[] {
  const byId = new Map(state.results.map((r) => [r.id, r]));
  let runningShown = false;
  const rows: DoctorRow[] = state.plan.map((step) => {
    const check = byId.get(step.id);
    if (check) return { kind: 'result', check };
    if (state.running && !runningShown) {
      runningShown = true;
      return { kind: 'running', ...step };
    }
    return { kind: 'waiting', ...step };
  });
  // A result the plan did not name (a newer azdb's check) still shows.
  for (const check of state.results) if (!state.plan.some((p) => p.id === check.id)) rows.push({ kind: 'result', check });
  return rows;
}

/**
 * Lines the check rows take at this width (results of warn / fail wrap, with their hint), for a
 * live area no taller than its content.
 */
export function doctorRowsHeight(state: DoctorScreenState, columns: number): number {
  let lines = 0;
  for (const row of doctorRows(state)) {
    if (row.kind !== 'result' || (row.check.status !== 'fail' && row.check.status !== 'warn')) {
      lines += 1;
      continue;
    }
    lines += textLines(`${STATUS_MARK[row.check.status]} ${row.check.title.padEnd(26)} ${row.check.detail}`, columns);
    if (row.check.hint) lines += textLines(`       hint: ${row.check.hint}`, columns);
  }
  if (state.error?.hint) lines += textLines(`hint: ${state.error.hint}`, columns);
  return lines;
}

/** Status markers that read without colour too (NO_COLOR): an icon and the word. */
export const STATUS_MARK: Readonly<Record<TuiCheckStatus, string>> = {
  pass: '✓ PASS',
  warn: '! WARN',
  fail: '✗ FAIL',
  skip: '- SKIP',
};

/** One line under the checks: what is running, or what the run came to. */
export function doctorSummary(state: DoctorScreenState): string {
  if (state.error) return `The doctor could not run: ${state.error.message}`;
  const count = (status: TuiCheckStatus) => state.results.filter((r) => r.status === status).length;
  if (state.running) return `Checking ${state.name}: ${state.results.length} of ${state.plan.length} checks done…`;
  const failed = state.results.filter((r) => r.status === 'fail');
  const warned = count('warn');
  const warnings = warned > 0 ? ` ${warned} warning${warned === 1 ? '' : 's'}.` : '';
  if (failed.length === 0) return `No problems found with ${state.name}.${warnings}`;
  return `${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((c) => c.title).join(', ')}.${warnings}`;
}

/** The screen's commands in matching order, with what the key bar and help call them. */
export const DOCTOR_COMMANDS: ReadonlyArray<readonly [Command, string]> = [
  [Command.Retry, 're-run'],
  [Command.Back, 'back'],
  [Command.Quit, 'quit'],
  [Command.ForceQuit, 'quit'],
];

export function doctorKeyBar(): Array<{ keys: string; label: string }> {
  return DOCTOR_COMMANDS.filter(([command]) => command !== Command.ForceQuit).map(([command, label]) => ({ keys: bindingLabel(KEY_BINDINGS[command][0]!), label }));
}

/** The intent of a key press, or undefined when the key does nothing here. */
export function doctorKeyToIntent(input: string, key: KeyPress): DoctorIntent | undefined {
  switch (matchCommand(DOCTOR_COMMANDS.map(([c]) => c), input, key)) {
    case Command.Retry:
      return { type: 'rerun' };
    case Command.Back:
      return { type: 'leave', to: 'back' };
    case Command.Quit:
    case Command.ForceQuit:
      return { type: 'leave', to: 'quit' };
    default:
      return undefined;
  }
}
