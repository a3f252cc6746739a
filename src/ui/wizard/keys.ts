/**
 * The wizard's key bindings as data, and the pure mapping from a key press (in a given state) to
 * actions. The key bar is generated from the same table.
 */
import { matchesBinding, typedText, type KeyBinding, type KeyPress } from '../keys.js';
import { DONE, STEP_FIELDS, choicesOf, currentStep, type WizardAction, type WizardState } from './state.js';

export enum WizardCommand {
  Next = 'next',
  Back = 'back',
  Retry = 'retry',
  Skip = 'skip',
  Field = 'field',
  Edit = 'edit',
  RunSql = 'run-sql',
  Yes = 'yes',
  No = 'no',
  OpenPicker = 'open-picker',
  Restart = 'restart',
  Quit = 'quit',
  ForceQuit = 'force-quit',
  Commit = 'commit',
  Cancel = 'cancel',
  DeleteChar = 'delete-char',
  /** On a choice field being edited: the previous / next value. */
  ChoosePrevious = 'choose-previous',
  ChooseNext = 'choose-next',
  Help = 'help',
  CloseHelp = 'close-help',
}

/** A binding, plus the arrows the shared table has no name for. */
export type WizardBinding = KeyBinding | { arrow: 'left' | 'right' };

export const WIZARD_BINDINGS: Readonly<Record<WizardCommand, readonly WizardBinding[]>> = {
  [WizardCommand.Next]: [{ key: 'return' }, { arrow: 'right' }],
  [WizardCommand.Back]: [{ char: 'b' }, { arrow: 'left' }],
  [WizardCommand.Retry]: [{ char: 'r' }],
  [WizardCommand.Skip]: [{ char: 's' }],
  [WizardCommand.Field]: [{ key: 'tab' }],
  [WizardCommand.Edit]: [{ char: 'e' }],
  [WizardCommand.RunSql]: [{ char: 'x' }],
  [WizardCommand.Yes]: [{ char: 'y' }],
  [WizardCommand.No]: [{ char: 'n' }],
  [WizardCommand.OpenPicker]: [{ char: 'o' }, { key: 'return' }],
  [WizardCommand.Restart]: [{ char: 'r' }],
  [WizardCommand.Quit]: [{ char: 'q' }],
  [WizardCommand.ForceQuit]: [{ char: 'c', ctrl: true }],
  [WizardCommand.Commit]: [{ key: 'return' }],
  [WizardCommand.Cancel]: [{ key: 'escape' }],
  [WizardCommand.DeleteChar]: [{ key: 'backspace' }, { key: 'delete' }],
  [WizardCommand.ChoosePrevious]: [{ key: 'up' }, { char: 'k' }],
  [WizardCommand.ChooseNext]: [{ key: 'down' }, { char: 'j' }],
  [WizardCommand.Help]: [{ char: '?' }],
  [WizardCommand.CloseHelp]: [{ char: '?' }, { key: 'escape' }],
};

const LABELS: Record<string, string> = { return: 'enter', escape: 'esc', tab: 'tab', backspace: 'backspace', delete: 'del', left: '←', right: '→', up: '↑', down: '↓' };

export function wizardKeys(command: WizardCommand): string {
  return WIZARD_BINDINGS[command]
    .map((b) => ('arrow' in b ? LABELS[b.arrow]! : 'key' in b ? (LABELS[b.key] ?? b.key) : b.ctrl ? `ctrl+${b.char}` : b.char))
    .join('/');
}

export function matchesWizard(command: WizardCommand, input: string, key: KeyPress & { leftArrow?: boolean; rightArrow?: boolean }): boolean {
  return WIZARD_BINDINGS[command].some((b) => ('arrow' in b ? Boolean(b.arrow === 'left' ? key.leftArrow : key.rightArrow) : matchesBinding(b, input, key)));
}

/** The commands the screen offers now, in priority order. */
export function activeCommands(state: WizardState): WizardCommand[] {
  if (state.editing) {
    if (choicesOf(state.editing.field)) return [WizardCommand.ForceQuit, WizardCommand.ChoosePrevious, WizardCommand.ChooseNext, WizardCommand.Commit, WizardCommand.Cancel];
    return [WizardCommand.ForceQuit, WizardCommand.Commit, WizardCommand.Cancel, WizardCommand.DeleteChar];
  }
  if (state.help) return [WizardCommand.ForceQuit, WizardCommand.CloseHelp];
  if (state.confirmOverwrite) return [WizardCommand.ForceQuit, WizardCommand.Yes, WizardCommand.No, WizardCommand.Back, WizardCommand.Help, WizardCommand.Quit];
  if (state.index === DONE) return [WizardCommand.ForceQuit, WizardCommand.OpenPicker, WizardCommand.Restart, WizardCommand.Back, WizardCommand.Help, WizardCommand.Quit];
  const step = currentStep(state)!;
  const commands = [WizardCommand.ForceQuit];
  // A running check can be left (its work is aborted), not restarted.
  if (state.pending) return [...commands, WizardCommand.Skip, ...(state.index > 0 ? [WizardCommand.Back] : []), WizardCommand.Help, WizardCommand.Quit];
  if (state.status[step] === 'pass') commands.push(WizardCommand.Next);
  // After enter (next): the last step's o opens the picker on the config it just checked.
  if (step === 'connect' && state.status.connect === 'pass') commands.push(WizardCommand.OpenPicker);
  commands.push(WizardCommand.Retry, WizardCommand.Skip);
  if (state.index > 0) commands.push(WizardCommand.Back);
  if (STEP_FIELDS[step].length > 0) commands.push(WizardCommand.Field, WizardCommand.Edit);
  if (step === 'users') commands.push(WizardCommand.RunSql);
  commands.push(WizardCommand.Help, WizardCommand.Quit);
  return commands;
}

/** Keys → actions for the state the screen shows. Pure. */
export function wizardInput(state: WizardState, input: string, key: KeyPress & { leftArrow?: boolean; rightArrow?: boolean }): WizardAction[] {
  const command = activeCommands(state).find((c) => matchesWizard(c, input, key));
  if (state.editing && command === undefined) {
    if (choicesOf(state.editing.field)) return [];
    const text = typedText(input, key);
    return text ? [{ type: 'edit-type', text }] : [];
  }
  switch (command) {
    case undefined:
      return [];
    case WizardCommand.Next:
      return [{ type: 'next' }];
    case WizardCommand.Back:
      return [{ type: 'back' }];
    case WizardCommand.Retry:
      return [{ type: 'retry' }];
    case WizardCommand.Skip:
      return [{ type: 'skip' }];
    case WizardCommand.Field:
      return [{ type: 'focus-next' }];
    case WizardCommand.Edit:
      return [{ type: 'edit-start' }];
    case WizardCommand.RunSql:
      return [{ type: 'run-sql' }];
    case WizardCommand.Yes:
      return [{ type: 'confirm', yes: true }];
    case WizardCommand.No:
      return [{ type: 'confirm', yes: false }];
    case WizardCommand.OpenPicker:
      return [{ type: 'open-picker' }];
    case WizardCommand.Restart:
      return [{ type: 'restart' }];
    case WizardCommand.Quit:
    case WizardCommand.ForceQuit:
      return [{ type: 'quit' }];
    case WizardCommand.Commit:
      return [{ type: 'edit-commit' }];
    case WizardCommand.Cancel:
      return [{ type: 'edit-cancel' }];
    case WizardCommand.DeleteChar:
      return [{ type: 'edit-delete' }];
    case WizardCommand.ChoosePrevious:
      return [{ type: 'edit-choose', delta: -1 }];
    case WizardCommand.ChooseNext:
      return [{ type: 'edit-choose', delta: 1 }];
    case WizardCommand.Help:
    case WizardCommand.CloseHelp:
      return [{ type: 'toggle-help' }];
  }
}

const HINT_LABELS: Record<WizardCommand, string> = {
  [WizardCommand.Next]: 'next',
  [WizardCommand.Back]: 'back',
  [WizardCommand.Retry]: 'retry',
  [WizardCommand.Skip]: 'skip',
  [WizardCommand.Field]: 'field',
  [WizardCommand.Edit]: 'edit',
  [WizardCommand.RunSql]: 'run SQL as admin',
  [WizardCommand.Yes]: 'overwrite',
  [WizardCommand.No]: 'keep',
  [WizardCommand.OpenPicker]: 'open picker',
  [WizardCommand.Restart]: 'start over',
  [WizardCommand.Quit]: 'quit',
  [WizardCommand.ForceQuit]: 'quit',
  [WizardCommand.Commit]: 'save',
  [WizardCommand.Cancel]: 'cancel',
  [WizardCommand.DeleteChar]: 'delete',
  [WizardCommand.ChoosePrevious]: 'previous',
  [WizardCommand.ChooseNext]: 'next choice',
  [WizardCommand.Help]: 'help',
  [WizardCommand.CloseHelp]: 'close help',
};

/** The key bar: what the screen offers now. */
export function keyHints(state: WizardState): Array<{ keys: string; label: string }> {
  return activeCommands(state)
    .filter((c) => c !== WizardCommand.ForceQuit && c !== WizardCommand.DeleteChar)
    .map((c) => ({ keys: wizardKeys(c), label: HINT_LABELS[c] }));
}

/** The `?` screen's key list: every command a step can offer, with what it does. */
export function helpRows(): Array<{ keys: string; label: string }> {
  const rows: Array<[WizardCommand, string]> = [
    [WizardCommand.Next, 'next step (once the step passed)'],
    [WizardCommand.Back, 'previous step'],
    [WizardCommand.Retry, 'run the step\'s check again'],
    [WizardCommand.Skip, 'skip the step'],
    [WizardCommand.Field, 'next field of the step'],
    [WizardCommand.Edit, 'edit the field: type, or ↑/↓ on a choice; enter saves, esc cancels'],
    [WizardCommand.RunSql, 'step 3: run the SQL on every server as the Entra admin'],
    [WizardCommand.OpenPicker, 'open the picker (last step, or when done)'],
    [WizardCommand.Quit, 'quit; progress is saved and setup resumes there'],
    [WizardCommand.CloseHelp, 'close this help'],
  ];
  return rows.map(([command, label]) => ({ keys: wizardKeys(command), label }));
}
