/**
 * The doctor screen's state, its pure reducer and its keys. The checks of `azdb doctor NAME`
 * arrive one by one (`result`) for the run they belong to; `r` starts a new run (the hook aborts
 * the old one), and results of an older run are ignored. A check's row may be cut to fit: enter
 * (or v) shows the selected one whole.
 */
import type { TuiCheck, TuiCheckStatus, TuiErrorInfo } from '../../core/api/picker.js';
import { DETAIL_COMMANDS, detailKeyBar, detailScreenIntent, openDetail, scrollDetail, type Detail, type DetailViewport } from '../detail/state.js';
import { bindingLabel, Command, KEY_BINDINGS, LIST_MOVES, matchCommand, type KeyHint, type KeyPress } from '../keys.js';
import { clampCursor, textLines } from '../layout.js';

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
  /** The selected check's id (undefined: the first row); it stays on its check across re-runs. */
  selected: string | undefined;
  /** enter / v: the selected check's result whole. */
  detail: Detail | undefined;
  /** `?`: the keys of this screen instead of the checks. */
  help: boolean;
}

export type DoctorAction =
  | { type: 'result'; run: number; check: TuiCheck }
  | { type: 'finished'; run: number; ok: boolean }
  | { type: 'failed'; run: number; error: TuiErrorInfo }
  | { type: 'rerun' }
  | { type: 'move'; delta: number }
  | { type: 'open-detail' }
  | { type: 'close-detail' }
  | { type: 'scroll-detail'; delta: number; viewport: DetailViewport }
  | { type: 'toggle-help' };

/** What a key asks for: a state change, or leaving the screen (back to the list, or quit). */
export type DoctorIntent = DoctorAction | { type: 'leave'; to: 'back' | 'quit' };

export function initialDoctorState(name: string, plan: Array<{ id: string; title: string }>): DoctorScreenState {
  return { name, plan, results: [], run: 1, running: true, ok: undefined, error: undefined, selected: undefined, detail: undefined, help: false };
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
    case 'move': {
      const rows = doctorRows(state);
      const cursor = clampCursor(selectedRowIndex(state) + action.delta, rows.length);
      return { ...state, selected: rows[cursor] ? rowId(rows[cursor]) : undefined };
    }
    case 'open-detail': {
      const row = doctorRows(state)[selectedRowIndex(state)];
      if (row?.kind !== 'result') return state;
      return { ...state, detail: checkDetail(state.name, row.check) };
    }
    case 'close-detail':
      return { ...state, detail: undefined };
    case 'scroll-detail':
      return state.detail ? { ...state, detail: scrollDetail(state.detail, action.delta, action.viewport) } : state;
    case 'toggle-help':
      return { ...state, help: !state.help };
  }
}

function rowId(row: DoctorRow): string {
  return row.kind === 'result' ? row.check.id : row.id;
}

/** The index of the selected row in {@link doctorRows} (the first when none is). */
export function selectedRowIndex(state: DoctorScreenState): number {
  return Math.max(0, doctorRows(state).findIndex((row) => rowId(row) === state.selected));
}

/** A check's result whole: its status, what it found, and the hint. */
export function checkDetail(name: string, check: TuiCheck): Detail {
  const text = `${STATUS_MARK[check.status]}  ${check.detail}${check.hint ? `\n\nhint: ${check.hint}` : ''}`;
  return openDetail(`${check.title} · ${name}`, text);
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
    lines += textLines(`${ROW_MARGIN}${STATUS_MARK[row.check.status]} ${row.check.title.padEnd(26)} ${row.check.detail}`, columns);
    if (row.check.hint) lines += textLines(`${HINT_INDENT}hint: ${row.check.hint}`, columns);
  }
  if (state.error?.hint) lines += textLines(`hint: ${state.error.hint}`, columns);
  return lines;
}

/** Before each row: `▸ ` on the selected one. */
export const ROW_MARGIN = '  ';
/** A hint under its check, under the check's title. */
export const HINT_INDENT = ' '.repeat(ROW_MARGIN.length + 7);

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

export type DoctorMode = 'list' | 'detail' | 'help';

export function doctorMode(state: DoctorScreenState): DoctorMode {
  if (state.help) return 'help';
  return state.detail ? 'detail' : 'list';
}

/** The screen's commands in matching order, with what the key bar and help call them. */
export const DOCTOR_COMMANDS: ReadonlyArray<readonly [Command, string]> = [
  [Command.Details, 'details'],
  [Command.Retry, 're-run'],
  ...LIST_MOVES,
  [Command.Help, 'help'],
  [Command.Back, 'back'],
  [Command.Quit, 'quit'],
  [Command.ForceQuit, 'quit'],
];

const HELP_COMMANDS: ReadonlyArray<readonly [Command, string]> = [
  [Command.Help, 'close help'],
  [Command.Back, 'close help'],
  [Command.Quit, 'quit'],
  [Command.ForceQuit, 'quit'],
];

export function doctorKeyBar(state: DoctorScreenState): KeyHint[] {
  switch (doctorMode(state)) {
    case 'detail':
      return detailKeyBar();
    case 'help':
      return [{ keys: 'esc', label: 'close help' }];
    case 'list':
      return [
        { keys: bindingLabel(KEY_BINDINGS[Command.Details][0]!), label: 'details' },
        { keys: 'r', label: 're-run' },
        { keys: '↑↓', label: 'move' },
        { keys: '?', label: 'help' },
        { keys: 'esc', label: 'back' },
        { keys: 'Q', label: 'quit' },
      ];
  }
}

/** The intent of a key press, or undefined when the key does nothing here. `detail`: the room of a details view. */
export function doctorKeyToIntent(state: DoctorScreenState, input: string, key: KeyPress, detail: DetailViewport): DoctorIntent | undefined {
  const mode = doctorMode(state);
  if (mode === 'detail') return detailScreenIntent(input, key, detail);
  switch (matchCommand((mode === 'help' ? HELP_COMMANDS : DOCTOR_COMMANDS).map(([c]) => c), input, key)) {
    case Command.Details:
      return { type: 'open-detail' };
    case Command.Retry:
      return { type: 'rerun' };
    case Command.Up:
      return { type: 'move', delta: -1 };
    case Command.Down:
      return { type: 'move', delta: 1 };
    case Command.PageUp:
      return { type: 'move', delta: -10 };
    case Command.PageDown:
      return { type: 'move', delta: 10 };
    case Command.Top:
      return { type: 'move', delta: -Infinity };
    case Command.Bottom:
      return { type: 'move', delta: Infinity };
    case Command.Help:
      return { type: 'toggle-help' };
    case Command.Back:
      return mode === 'help' ? { type: 'toggle-help' } : { type: 'leave', to: 'back' };
    case Command.Quit:
    case Command.ForceQuit:
      return { type: 'leave', to: 'quit' };
    default:
      return undefined;
  }
}
