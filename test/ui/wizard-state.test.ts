import { describe, expect, it } from 'vitest';
import type { SetupAnswers, StepReport } from '../../src/core/api/setup.js';
import { discoveryRole, roleCommands } from '../../src/core/setup/artifacts.js';
import { activeCommands, helpRows, keyHints, WizardCommand, wizardInput } from '../../src/ui/wizard/keys.js';
import { DONE, STEP_FIELDS, initialWizardState, toProgress, wizardReducer, type WizardAction, type WizardState } from '../../src/ui/wizard/state.js';

const ANSWERS: SetupAnswers = { types: 'postgres,mysql', regions: '*', subscriptions: '*', dbUser: 'teleport', privilege: 'read-only', pgDatabases: 'postgres', mysqlDatabases: '', adminUser: '', servers: '' };
const report = (step: StepReport['step'], status: 'pass' | 'fail', extra: Partial<StepReport> = {}): StepReport => ({ step, status, detail: `${step} ${status}`, hint: 'do this', lines: [], artifacts: [], ...extra });
const done = (state: WizardState, r: StepReport): WizardState => wizardReducer(state, { type: 'step-done', id: state.pending!.id, report: r });
const apply = (state: WizardState, ...actions: WizardAction[]) => actions.reduce(wizardReducer, state);

describe('wizard reducer', () => {
  it('starts at step 1 and asks for its check', () => {
    const s = initialWizardState(ANSWERS);
    expect(s.index).toBe(0);
    expect(s.status.credentials).toBe('running');
    expect(s.pending?.work).toEqual({ kind: 'check', step: 'credentials' });
  });

  it('moves on only after a pass; retry, skip and back', () => {
    let s = initialWizardState(ANSWERS);
    s = done(s, report('credentials', 'fail'));
    expect(s.status.credentials).toBe('fail');
    expect(wizardReducer(s, { type: 'next' })).toBe(s);
    s = wizardReducer(s, { type: 'retry' });
    expect(s.pending?.work).toEqual({ kind: 'check', step: 'credentials' });
    s = done(s, report('credentials', 'pass'));
    s = wizardReducer(s, { type: 'next' });
    expect(s.index).toBe(1);
    expect(s.pending?.work).toEqual({ kind: 'check', step: 'iam' });
    s = wizardReducer(s, { type: 'skip' });
    expect(s.status.iam).toBe('skipped');
    expect(s.index).toBe(2);
    s = wizardReducer(s, { type: 'back' });
    expect(s.index).toBe(1);
    expect(s.status.iam).toBe('running');
  });

  it('ignores the answer of a superseded check', () => {
    let s = initialWizardState(ANSWERS);
    const stale = s.pending!.id;
    const running = s;
    s = wizardReducer(s, { type: 'retry' });
    expect(s).toBe(running); // a running check is not restarted
    expect(s.pending!.id).toBe(stale);
    s = wizardReducer({ ...s, pending: { id: 99, work: { kind: 'check', step: 'credentials' } } }, { type: 'step-done', id: stale, report: report('credentials', 'pass') });
    expect(s.status.credentials).toBe('running');
  });

  it('edits a field and re-runs the check with the new answer', () => {
    let s = initialWizardState(ANSWERS, { step: 1, completed: ['credentials'], answers: {} });
    expect(s.index).toBe(1);
    s = done(s, report('iam', 'fail'));
    s = apply(s, { type: 'focus-next' }, { type: 'edit-start' });
    expect(s.editing?.field).toBe('regions');
    s = apply(s, { type: 'edit-delete' }, { type: 'edit-type', text: 'eastus' }, { type: 'edit-commit' });
    expect(s.answers.regions).toBe('eastus');
    expect(s.pending?.work).toEqual({ kind: 'check', step: 'iam' });
  });

  it('asks before overwriting the config, y overwrites, n keeps and checks', () => {
    let s = initialWizardState(ANSWERS, { step: 3, completed: ['credentials', 'iam', 'users'], answers: {} });
    expect(s.pending?.work).toEqual({ kind: 'write-config', overwrite: false, keepExisting: false });
    s = done(s, { ...report('config', 'fail'), exists: true });
    expect(s.confirmOverwrite).toBe(true);
    const yes = wizardReducer(s, { type: 'confirm', yes: true });
    expect(yes.pending?.work).toEqual({ kind: 'write-config', overwrite: true, keepExisting: false });
    const no = wizardReducer(s, { type: 'confirm', yes: false });
    expect(no.pending?.work).toEqual({ kind: 'write-config', overwrite: false, keepExisting: true });
  });

  it('saves progress and resumes at the first unfinished step, or done', () => {
    let s = initialWizardState(ANSWERS);
    s = done(s, report('credentials', 'pass'));
    s = wizardReducer(s, { type: 'next' });
    s = wizardReducer(s, { type: 'skip' });
    const progress = toProgress(s);
    expect(progress).toMatchObject({ step: 2, completed: ['credentials', 'iam'] });
    const resumed = initialWizardState(ANSWERS, progress);
    expect(resumed.index).toBe(2);
    expect(resumed.status.iam).toBe('skipped');
    const all = initialWizardState(ANSWERS, { step: 5, completed: ['credentials', 'iam', 'users', 'config', 'connect'], answers: { dbUser: 'app' } });
    expect(all.index).toBe(DONE);
    expect(all.pending).toBeUndefined();
    expect(all.answers.dbUser).toBe('app');
    expect(wizardReducer(all, { type: 'open-picker' }).exit).toBe('picker');
    expect(wizardReducer(all, { type: 'restart' }).index).toBe(0);
  });

  it('opens the picker with o once step 5 passed, and not before', () => {
    let s = initialWizardState(ANSWERS, { step: 4, completed: ['credentials', 'iam', 'users', 'config'], answers: {} });
    expect(wizardInput(s, 'o', {})).toEqual([]); // still checking
    expect(wizardReducer(s, { type: 'open-picker' }).exit).toBeUndefined();
    s = done(s, report('connect', 'pass'));
    expect(wizardInput(s, 'o', {})).toEqual([{ type: 'open-picker' }]);
    expect(wizardInput(s, '', { return: true })).toEqual([{ type: 'next' }]); // enter still goes on
    expect(wizardReducer(s, { type: 'open-picker' }).exit).toBe('picker');
    const failed = done(initialWizardState(ANSWERS, { step: 4, completed: ['credentials', 'iam', 'users', 'config'], answers: {} }), report('connect', 'fail'));
    expect(wizardInput(failed, 'o', {})).toEqual([]);
  });

  it('run-sql only on the users step', () => {
    const s = initialWizardState(ANSWERS);
    expect(wizardReducer(s, { type: 'run-sql' })).toBe(s);
    let u = initialWizardState(ANSWERS, { step: 2, completed: ['credentials', 'iam'], answers: {} });
    u = done(u, report('users', 'fail'));
    expect(wizardReducer(u, { type: 'run-sql' }).pending?.work).toEqual({ kind: 'run-sql' });
  });
});

describe('wizard key map', () => {
  const idle = (() => {
    const s = initialWizardState(ANSWERS, { step: 2, completed: ['credentials', 'iam'], answers: {} });
    return done(s, report('users', 'pass'));
  })();

  it('maps keys to actions by the state', () => {
    expect(wizardInput(idle, '', { return: true })).toEqual([{ type: 'next' }]);
    expect(wizardInput(idle, '', { rightArrow: true })).toEqual([{ type: 'next' }]);
    expect(wizardInput(idle, 'b', {})).toEqual([{ type: 'back' }]);
    expect(wizardInput(idle, '', { leftArrow: true })).toEqual([{ type: 'back' }]);
    expect(wizardInput(idle, 'r', {})).toEqual([{ type: 'retry' }]);
    expect(wizardInput(idle, 's', {})).toEqual([{ type: 'skip' }]);
    expect(wizardInput(idle, 'x', {})).toEqual([{ type: 'run-sql' }]);
    expect(wizardInput(idle, 'q', {})).toEqual([{ type: 'quit' }]);
    expect(wizardInput(idle, 'c', { ctrl: true })).toEqual([{ type: 'quit' }]);
    expect(wizardInput(idle, 'z', {})).toEqual([]);
  });

  it('types into a field being edited', () => {
    const editing = wizardReducer(idle, { type: 'edit-start' });
    expect(wizardInput(editing, 'r', {})).toEqual([{ type: 'edit-type', text: 'r' }]);
    expect(wizardInput(editing, '', { return: true })).toEqual([{ type: 'edit-commit' }]);
    expect(wizardInput(editing, '', { escape: true })).toEqual([{ type: 'edit-cancel' }]);
    expect(wizardInput(editing, '', { backspace: true })).toEqual([{ type: 'edit-delete' }]);
  });

  it('chooses the privilege level with ↑/↓ (or k/j): typing does nothing, enter saves and re-checks, esc keeps the old one', () => {
    const focused = apply(idle, { type: 'focus-next' });
    expect(STEP_FIELDS.users[focused.focus]).toBe('privilege');
    const choosing = wizardReducer(focused, { type: 'edit-start' });
    expect(choosing.editing).toEqual({ field: 'privilege', value: 'read-only' });
    expect(wizardInput(choosing, '', { downArrow: true })).toEqual([{ type: 'edit-choose', delta: 1 }]);
    expect(wizardInput(choosing, 'j', {})).toEqual([{ type: 'edit-choose', delta: 1 }]);
    expect(wizardInput(choosing, '', { upArrow: true })).toEqual([{ type: 'edit-choose', delta: -1 }]);
    expect(wizardInput(choosing, 'k', {})).toEqual([{ type: 'edit-choose', delta: -1 }]);
    expect(wizardInput(choosing, 'x', {})).toEqual([]);
    expect(wizardReducer(choosing, { type: 'edit-type', text: 'x' })).toBe(choosing);
    expect(keyHints(choosing).map((h) => `${h.keys} ${h.label}`)).toEqual(['↑/k previous', '↓/j next choice', 'enter save', 'esc cancel']);
    const owner = apply(choosing, { type: 'edit-choose', delta: 1 }, { type: 'edit-choose', delta: 1 });
    expect(owner.editing?.value).toBe('owner');
    expect(wizardReducer(owner, { type: 'edit-choose', delta: 1 }).editing?.value).toBe('read-only'); // wraps
    expect(wizardReducer(choosing, { type: 'edit-choose', delta: -1 }).editing?.value).toBe('owner');
    expect(wizardReducer(owner, { type: 'edit-cancel' }).answers.privilege).toBe('read-only');
    const saved = wizardReducer(owner, { type: 'edit-commit' });
    expect(saved.answers.privilege).toBe('owner');
    expect(saved.pending?.work).toEqual({ kind: 'check', step: 'users' });
    expect(toProgress(saved).answers.privilege).toBe('owner');
    // An answer saved by hand or by an older azdb starts the choice at the first level.
    const odd = wizardReducer({ ...focused, answers: { ...focused.answers, privilege: 'admin' } }, { type: 'edit-start' });
    expect(odd.editing?.value).toBe('read-only');
  });

  it('? opens the help on every screen but a field being typed into; ? or esc closes it', () => {
    expect(wizardInput(idle, '?', {})).toEqual([{ type: 'toggle-help' }]);
    expect(keyHints(idle).map((h) => h.keys)).toContain('?');
    const help = wizardReducer(idle, { type: 'toggle-help' });
    expect(help.help).toBe(true);
    expect(activeCommands(help)).toEqual([WizardCommand.ForceQuit, WizardCommand.CloseHelp]);
    expect(wizardInput(help, 'x', {})).toEqual([]);
    expect(wizardInput(help, '', { escape: true })).toEqual([{ type: 'toggle-help' }]);
    expect(wizardReducer(help, { type: 'toggle-help' }).help).toBe(false);
    const typing = wizardReducer(idle, { type: 'edit-start' });
    expect(wizardInput(typing, '?', {})).toEqual([{ type: 'edit-type', text: '?' }]);
    const running = initialWizardState(ANSWERS);
    expect(wizardInput(running, '?', {})).toEqual([{ type: 'toggle-help' }]);
    expect(helpRows().map((r) => r.keys)).toEqual(expect.arrayContaining(['x', 'e', 'tab', '?/esc']));
  });

  it('offers y/n while confirming, and no next while a check runs', () => {
    let s = initialWizardState(ANSWERS, { step: 3, completed: ['credentials', 'iam', 'users'], answers: {} });
    expect(activeCommands(s)).not.toContain(WizardCommand.Next);
    s = done(s, { ...report('config', 'fail'), exists: true });
    expect(wizardInput(s, 'y', {})).toEqual([{ type: 'confirm', yes: true }]);
    expect(wizardInput(s, 'n', {})).toEqual([{ type: 'confirm', yes: false }]);
    expect(keyHints(s).map((h) => h.label)).toContain('overwrite');
  });
});

describe('artifacts', () => {
  it('role JSON for the chosen types and subscriptions', () => {
    const role = discoveryRole(['postgres'], ['sub-1']) as { properties: { assignableScopes: string[]; permissions: Array<{ actions: string[] }> } };
    expect(role.properties.assignableScopes).toEqual(['/subscriptions/sub-1']);
    expect(role.properties.permissions[0]!.actions).toEqual([
      'Microsoft.DBforPostgreSQL/flexibleServers/read',
      'Microsoft.DBforPostgreSQL/servers/read',
      'Microsoft.Resources/subscriptions/read',
    ]);
    expect(roleCommands('/x/role.json', 'cid', ['sub-1'])).toEqual([
      'az role definition create --role-definition @/x/role.json',
      'az role assignment create --assignee cid --role azdb-discovery --scope /subscriptions/sub-1',
    ]);
  });
});
