/**
 * The setup wizard's state and its pure reducer. Work for the core (a step's check, writing the
 * config) is asked for through `pending`; the hook in hooks.ts carries it out and answers with
 * `step-done`. Progress (step, completed steps, answers) is what the user-state store keeps.
 */
import type { WizardProgress } from '../../core/api/setup.js';
import { ANSWER_KEYS, PRIVILEGE_LEVELS, STEP_IDS, type SetupAnswers, type StepId, type StepReport } from '../../core/api/setup.js';

export type StepStatus = 'pending' | 'running' | 'pass' | 'fail' | 'skipped';

/** Fields the user may edit, per step. */
export const STEP_FIELDS: Readonly<Record<StepId, ReadonlyArray<keyof SetupAnswers>>> = {
  credentials: [],
  iam: ['types', 'regions', 'subscriptions'],
  users: ['dbUser', 'privilege', 'pgDatabases', 'mysqlDatabases', 'adminUser', 'servers'],
  config: [],
  connect: [],
};

export const FIELD_LABELS: Readonly<Record<keyof SetupAnswers, string>> = {
  types: 'types (postgres,mysql)',
  regions: 'regions (* or eastus,...)',
  subscriptions: 'subscriptions (* or ids)',
  dbUser: 'database user',
  privilege: 'privilege level',
  pgDatabases: 'PostgreSQL databases',
  mysqlDatabases: 'MySQL databases',
  adminUser: 'Entra admin',
  servers: 'servers (empty = all found)',
};

/** Fields answered by choosing one of a few values (↑/↓ while editing) instead of typing. */
export const CHOICE_FIELDS: Readonly<Partial<Record<keyof SetupAnswers, readonly string[]>>> = {
  privilege: PRIVILEGE_LEVELS,
};

export function choicesOf(field: keyof SetupAnswers): readonly string[] | undefined {
  return CHOICE_FIELDS[field];
}

export type Work =
  | { kind: 'check'; step: StepId }
  | { kind: 'run-sql' }
  | { kind: 'write-config'; overwrite: boolean; keepExisting: boolean };

export interface WizardState {
  /** 0..4: a step; 5: done. */
  index: number;
  status: Record<StepId, StepStatus>;
  reports: Partial<Record<StepId, StepReport>>;
  answers: SetupAnswers;
  /** Field with the focus in the current step. */
  focus: number;
  editing: { field: keyof SetupAnswers; value: string } | undefined;
  /** Asking whether to overwrite the existing config. */
  confirmOverwrite: boolean;
  /** The `?` screen is open. */
  help: boolean;
  pending: { id: number; work: Work } | undefined;
  nextId: number;
  exit: 'quit' | 'picker' | undefined;
}

export type WizardAction =
  | { type: 'enter-step' }
  | { type: 'retry' }
  | { type: 'skip' }
  | { type: 'back' }
  | { type: 'next' }
  | { type: 'step-done'; id: number; report: StepReport }
  | { type: 'step-error'; id: number; step: StepId; message: string; hint?: string }
  | { type: 'focus-next' }
  | { type: 'edit-start' }
  | { type: 'edit-type'; text: string }
  | { type: 'edit-delete' }
  /** On a choice field: the next (1) or previous (-1) value. */
  | { type: 'edit-choose'; delta: 1 | -1 }
  | { type: 'toggle-help' }
  | { type: 'edit-commit' }
  | { type: 'edit-cancel' }
  | { type: 'run-sql' }
  | { type: 'confirm'; yes: boolean }
  | { type: 'restart' }
  | { type: 'open-picker' }
  | { type: 'quit' };

export const DONE = STEP_IDS.length;

export function currentStep(state: WizardState): StepId | undefined {
  return STEP_IDS[state.index];
}

/** Resumes at the first step not completed (or done when all are). */
export function initialWizardState(answers: SetupAnswers, progress?: WizardProgress): WizardState {
  const status = Object.fromEntries(STEP_IDS.map((id) => [id, 'pending'])) as Record<StepId, StepStatus>;
  const saved = progress?.answers ?? {};
  const merged = { ...answers };
  for (const key of ANSWER_KEYS) if (typeof saved[key] === 'string') merged[key] = saved[key]!;
  const completed = new Set(progress?.completed ?? []);
  for (const id of STEP_IDS) {
    if (completed.has(id)) status[id] = progress?.answers[`status.${id}`] === 'skipped' ? 'skipped' : 'pass';
  }
  const first = STEP_IDS.findIndex((id) => !completed.has(id));
  const index = progress ? (first === -1 ? DONE : Math.min(first, Math.max(0, Math.min(progress.step, DONE)))) : 0;
  const base: WizardState = { index, status, reports: {}, answers: merged, focus: 0, editing: undefined, confirmOverwrite: false, help: false, pending: undefined, nextId: 1, exit: undefined };
  return index < DONE ? startWork(base, workFor(STEP_IDS[index]!)) : base;
}

/** What the store keeps. */
export function toProgress(state: WizardState): WizardProgress {
  const completed = STEP_IDS.filter((id) => state.status[id] === 'pass' || state.status[id] === 'skipped');
  const answers: Record<string, string> = { ...state.answers };
  for (const id of completed) answers[`status.${id}`] = state.status[id];
  return { step: state.index, completed: [...completed], answers };
}

function workFor(step: StepId): Work {
  return step === 'config' ? { kind: 'write-config', overwrite: false, keepExisting: false } : { kind: 'check', step };
}

function startWork(state: WizardState, work: Work): WizardState {
  const step = work.kind === 'check' ? work.step : work.kind === 'run-sql' ? 'users' : 'config';
  return {
    ...state,
    status: { ...state.status, [step]: 'running' },
    pending: { id: state.nextId, work },
    nextId: state.nextId + 1,
    confirmOverwrite: false,
  };
}

function go(state: WizardState, index: number): WizardState {
  const moved: WizardState = { ...state, index, focus: 0, editing: undefined, confirmOverwrite: false, pending: undefined };
  if (index >= DONE) return { ...moved, index: DONE };
  return startWork(moved, workFor(STEP_IDS[index]!));
}

export function wizardReducer(state: WizardState, action: WizardAction): WizardState {
  const step = currentStep(state);
  switch (action.type) {
    case 'enter-step':
    case 'retry':
      if (!step || state.pending) return state;
      return startWork(state, workFor(step));
    case 'skip': {
      if (!step) return state;
      const skipped = { ...state, status: { ...state.status, [step]: 'skipped' as StepStatus } };
      return go(skipped, state.index + 1);
    }
    case 'back':
      if (state.index === 0) return state;
      return go(state, state.index - 1);
    case 'next':
      if (!step || state.status[step] !== 'pass') return state;
      return go(state, state.index + 1);
    case 'step-done': {
      if (state.pending?.id !== action.id) return state;
      const { report } = action;
      const done: WizardState = { ...state, pending: undefined, reports: { ...state.reports, [report.step]: report } };
      if (report.step === 'config' && report.exists) {
        return { ...done, status: { ...done.status, config: 'fail' }, confirmOverwrite: true };
      }
      return { ...done, status: { ...done.status, [report.step]: report.status } };
    }
    case 'step-error': {
      if (state.pending?.id !== action.id) return state;
      const report: StepReport = { step: action.step, status: 'fail', detail: action.message, hint: action.hint ?? '', lines: [], artifacts: [] };
      return { ...state, pending: undefined, status: { ...state.status, [action.step]: 'fail' }, reports: { ...state.reports, [action.step]: report } };
    }
    case 'focus-next': {
      const fields = step ? STEP_FIELDS[step] : [];
      if (fields.length === 0 || state.editing) return state;
      return { ...state, focus: (state.focus + 1) % fields.length };
    }
    case 'edit-start': {
      const field = step ? STEP_FIELDS[step][state.focus] : undefined;
      if (!field || state.pending) return state;
      const choices = choicesOf(field);
      const value = state.answers[field];
      return { ...state, editing: { field, value: choices && !choices.includes(value) ? choices[0]! : value } };
    }
    case 'edit-type':
      return state.editing && !choicesOf(state.editing.field) ? { ...state, editing: { ...state.editing, value: state.editing.value + action.text } } : state;
    case 'edit-delete':
      return state.editing && !choicesOf(state.editing.field) ? { ...state, editing: { ...state.editing, value: state.editing.value.slice(0, -1) } } : state;
    case 'edit-choose': {
      const choices = state.editing ? choicesOf(state.editing.field) : undefined;
      if (!state.editing || !choices) return state;
      const at = (choices.indexOf(state.editing.value) + action.delta + choices.length) % choices.length;
      return { ...state, editing: { ...state.editing, value: choices[at]! } };
    }
    case 'toggle-help':
      return state.editing ? state : { ...state, help: !state.help };
    case 'edit-cancel':
      return { ...state, editing: undefined };
    case 'edit-commit': {
      if (!state.editing || !step) return state;
      const answers = { ...state.answers, [state.editing.field]: state.editing.value.trim() };
      return startWork({ ...state, answers, editing: undefined }, workFor(step));
    }
    case 'run-sql':
      if (step !== 'users' || state.pending) return state;
      return startWork(state, { kind: 'run-sql' });
    case 'confirm':
      if (!state.confirmOverwrite) return state;
      return startWork(state, { kind: 'write-config', overwrite: action.yes, keepExisting: !action.yes });
    case 'restart':
      if (state.index !== DONE) return state;
      return go({ ...state, status: Object.fromEntries(STEP_IDS.map((id) => [id, 'pending'])) as Record<StepId, StepStatus>, reports: {} }, 0);
    case 'open-picker':
      return state.index === DONE || (currentStep(state) === 'connect' && state.status.connect === 'pass' && !state.pending) ? { ...state, exit: 'picker' } : state;
    case 'quit':
      return { ...state, exit: 'quit', pending: undefined };
  }
}
