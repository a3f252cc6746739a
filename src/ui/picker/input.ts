/**
 * Which commands each picker mode answers, and key press → action. Pure: the hook in
 * use-picker-input.ts only feeds Ink's key presses through {@link keyToAction}.
 */
import { DOCTOR_COMMANDS } from '../doctor/state.js';
import { DETAIL_COMMANDS, detailKeyBar, detailKeyToIntent, detailViewport } from '../detail/state.js';
import { bindingLabel, Command, commandKeys, isPrintable, KEY_BINDINGS, keyPresses, LIST_MOVES, matchCommand, mergeByLabel, screenHelpRows, typedText, type KeyHint, type KeyPress } from '../keys.js';
import { QUERIES_COMMANDS } from '../queries/state.js';
import { mainHeight, pickerReducer, type PickerAction, type PickerState } from './state.js';

/** `screen`: the doctor or queries screen is open; it reads the keys itself. */
export type PickerMode = 'busy' | 'opening' | 'list' | 'filter' | 'login-list' | 'login-text' | 'help' | 'tunnel' | 'pools' | 'error' | 'confirm' | 'log' | 'log-detail' | 'screen';

export function pickerMode(state: PickerState): PickerMode {
  const overlay = state.overlay;
  if (overlay.kind === 'error') return 'error';
  // A background reload does not block the keys; other work in flight does, and the start of a
  // connection or tunnel (waiting for its token) can be cancelled.
  if (state.pending?.kind === 'connect' || state.pending?.kind === 'open-tunnel') return 'opening';
  if (state.pending && state.pending.kind !== 'load') return 'busy';
  switch (overlay.kind) {
    case 'help':
      return 'help';
    case 'confirm':
      return 'confirm';
    case 'tunnel':
      return 'tunnel';
    case 'pools':
      return 'pools';
    case 'log':
      return overlay.detail ? 'log-detail' : 'log';
    case 'login':
      return overlay.step.free ? 'login-text' : 'login-list';
    case 'doctor':
    case 'queries':
      return 'screen';
    case 'none':
      return state.filtering ? 'filter' : 'list';
  }
}

/** The commands of a mode, in matching priority order, with what the key bar and help call them. */
export const MODE_COMMANDS: Readonly<Record<PickerMode, ReadonlyArray<readonly [Command, string]>>> = {
  busy: [[Command.ForceQuit, 'quit']],
  opening: [
    [Command.Back, 'cancel'],
    [Command.ForceQuit, 'cancel'],
  ],
  list: [
    [Command.Connect, 'connect'],
    [Command.Tunnel, 'tunnel'],
    [Command.Doctor, 'doctor'],
    [Command.Queries, 'queries'],
    [Command.Filter, 'filter'],
    [Command.NextTunnel, 'tunnels'],
    [Command.Log, 'broker log'],
    [Command.Help, 'help'],
    [Command.Quit, 'quit'],
    ...LIST_MOVES,
    [Command.Back, 'clear filter'],
    [Command.Retry, 'reload'],
    [Command.Pools, 'pools'],
    [Command.ForceQuit, 'quit'],
  ],
  // In a prompt, ctrl+c cancels the prompt only (as esc does), never the whole picker.
  filter: [
    [Command.Accept, 'apply filter'],
    [Command.Back, 'clear filter'],
    [Command.Up, 'up'],
    [Command.Down, 'down'],
    [Command.DeleteChar, 'delete'],
    [Command.ClearInput, 'clear'],
    [Command.ForceQuit, 'clear filter'],
  ],
  'login-list': [
    [Command.Accept, 'choose'],
    [Command.Back, 'cancel'],
    [Command.Up, 'up'],
    [Command.Down, 'down'],
    [Command.ForceQuit, 'cancel'],
  ],
  'login-text': [
    [Command.Accept, 'choose'],
    [Command.Back, 'cancel'],
    [Command.Up, 'up'],
    [Command.Down, 'down'],
    [Command.DeleteChar, 'delete'],
    [Command.ClearInput, 'clear'],
    [Command.ForceQuit, 'cancel'],
  ],
  confirm: [
    [Command.Yes, 'yes'],
    [Command.No, 'no'],
    [Command.Back, 'no'],
    [Command.ForceQuit, 'quit now'],
  ],
  help: [
    [Command.Back, 'close help'],
    [Command.Help, 'close help'],
    [Command.Quit, 'quit'],
    [Command.ForceQuit, 'quit'],
  ],
  tunnel: [
    [Command.Copy, 'copy URI'],
    [Command.ShowPassword, 'show/hide password'],
    [Command.CloseTunnel, 'close tunnel'],
    [Command.NextTunnel, 'next tunnel'],
    [Command.Pools, 'pools'],
    [Command.Back, 'back'],
    [Command.Help, 'help'],
    [Command.Quit, 'quit'],
    [Command.ForceQuit, 'quit'],
  ],
  pools: [
    [Command.Back, 'back'],
    [Command.Pools, 'back'],
    [Command.Help, 'help'],
    [Command.Quit, 'quit'],
    [Command.ForceQuit, 'quit'],
  ],
  error: [
    [Command.Retry, 'retry'],
    [Command.Back, 'back'],
    [Command.Quit, 'quit'],
    [Command.ForceQuit, 'quit'],
  ],
  log: [
    [Command.Details, 'details'],
    ...LIST_MOVES,
    [Command.Back, 'back'],
    [Command.Help, 'help'],
    [Command.Quit, 'quit'],
    [Command.ForceQuit, 'quit'],
  ],
  'log-detail': DETAIL_COMMANDS,
  // The doctor and queries screens have their own commands (src/ui/doctor, src/ui/queries).
  screen: [],
};

/** Commands shown in the key bar per mode (the rest are in `?` help). */
const KEY_BAR: Readonly<Record<PickerMode, readonly Command[]>> = {
  busy: [Command.ForceQuit],
  opening: [Command.Back],
  // Fits 80 columns; moving and tab (named by the broker panel when tunnels are open) are in `?`.
  list: [Command.Connect, Command.Tunnel, Command.Filter, Command.Doctor, Command.Queries, Command.Help, Command.Quit],
  filter: [Command.Accept, Command.Back, Command.Up],
  'login-list': [Command.Accept, Command.Up, Command.Back],
  'login-text': [Command.Accept, Command.Up, Command.Back],
  help: [Command.Back],
  tunnel: [Command.Copy, Command.ShowPassword, Command.CloseTunnel, Command.NextTunnel, Command.Back],
  pools: [Command.Back, Command.Help, Command.Quit],
  error: [Command.Retry, Command.Back, Command.Quit],
  confirm: [Command.Yes, Command.No],
  log: [Command.Details, Command.Up, Command.Back, Command.Help, Command.Quit],
  'log-detail': [],
  screen: [],
};

/** The key bar: `enter connect`, `t tunnel`... for the current mode. */
export function keyBar(state: PickerState): KeyHint[] {
  const mode = pickerMode(state);
  if (mode === 'log-detail') return detailKeyBar();
  const labels = new Map(MODE_COMMANDS[mode]);
  return KEY_BAR[mode]
    .filter((command) => !(mode === 'error' && command === Command.Retry && !(state.overlay.kind === 'error' && state.overlay.retry)))
    .map((command) => ({ keys: shortKeys(command, mode), label: command === Command.Up ? 'move' : labels.get(command) ?? command }));
}

/** Keys as the key bar writes them: the arrows and j/k together for moving (only arrows while typing: j and k are text there). */
function shortKeys(command: Command, mode: PickerMode): string {
  if (command === Command.Up) return mode === 'filter' || mode === 'login-text' ? '↑↓' : '↑↓/jk';
  if (command === Command.Details) return 'enter/v';
  if (command === Command.ForceQuit) return 'ctrl+c';
  return bindingLabel(KEY_BINDINGS[command][0]!);
}

export interface HelpSection {
  section: string;
  rows: KeyHint[];
  /** Render on one line (`keys label · keys label`): the doctor and queries screens'. */
  inline?: boolean;
}

/**
 * Every binding of the list mode, the overlays and the doctor / queries screens, for `?`. Keys
 * with the same meaning share a row (`Q/ctrl+c quit`). The list's rows come first, two a line;
 * the others one section a line, without what they share with the list (moving, `?`, quitting),
 * so all of it fits 80×24.
 */
export function helpRows(): HelpSection[] {
  const rowsOf = (commands: ReadonlyArray<readonly [Command, string]>) => mergeByLabel(commands.map(([command, label]) => ({ keys: commandKeys(command), label })));
  const databases = rowsOf(MODE_COMMANDS.list);
  const shared = new Set(databases.map((row) => `${row.keys} ${row.label}`));
  const section = (title: string, rows: KeyHint[]): HelpSection => ({ section: title, inline: true, rows: rows.filter((row) => !shared.has(`${row.keys} ${row.label}`)) });
  return [
    { section: 'Databases (moving, ? and Q work alike on every screen)', rows: databases },
    section('Filter (/)', rowsOf(MODE_COMMANDS.filter)),
    section('Tunnel details (t, tab)', rowsOf(MODE_COMMANDS.tunnel)),
    section('Broker log (l)', rowsOf(MODE_COMMANDS.log)),
    section('Details (enter/v)', screenHelpRows(DETAIL_COMMANDS)),
    section('Doctor (d)', screenHelpRows(DOCTOR_COMMANDS)),
    section('Queries (q)', screenHelpRows(QUERIES_COMMANDS.list, [[Command.Yes, 'confirm terminate']])),
  ];
}

/** The action of a key press in the current state, or undefined when the key does nothing. */
export function keyToAction(state: PickerState, input: string, key: KeyPress): PickerAction | undefined {
  const mode = pickerMode(state);
  if (mode === 'log-detail') return logDetailAction(input, key, state);
  const textInput = mode === 'filter' || mode === 'login-text';
  const command = matchCommand(MODE_COMMANDS[mode].map(([c]) => c), input, key, { textInput });
  if (command === undefined) {
    if (textInput) {
      const text = typedText(input, key);
      return text ? { type: 'type', text } : undefined;
    }
    return undefined;
  }
  switch (command) {
    case Command.ForceQuit:
      if (mode === 'opening') return { type: 'cancel' };
      if (mode === 'filter' || mode === 'login-list' || mode === 'login-text') return { type: 'back' };
      return mode === 'confirm' ? { type: 'quit', confirmed: true } : { type: 'quit' };
    case Command.Yes:
      return { type: 'confirm-yes' };
    case Command.No:
      return { type: 'confirm-no' };
    case Command.Quit:
      return { type: 'quit' };
    case Command.Up:
      return { type: 'move', delta: -1 };
    case Command.Down:
      return { type: 'move', delta: 1 };
    case Command.PageUp:
      return { type: 'move-page', direction: -1 };
    case Command.PageDown:
      return { type: 'move-page', direction: 1 };
    case Command.Top:
      return { type: 'move-to', where: 'top' };
    case Command.Bottom:
      return { type: 'move-to', where: 'bottom' };
    case Command.Connect:
      return { type: 'request', purpose: 'connect' };
    case Command.Tunnel:
      return { type: 'request', purpose: 'tunnel' };
    case Command.Doctor:
      return { type: 'open-doctor' };
    case Command.Queries:
      return { type: 'request', purpose: 'queries' };
    case Command.Filter:
      return { type: 'filter-start' };
    case Command.Help:
      return { type: 'help' };
    case Command.Back:
      return mode === 'opening' ? { type: 'cancel' } : { type: 'back' };
    case Command.ShowPassword:
      return { type: 'toggle-password' };
    case Command.CloseTunnel:
      return { type: 'close-tunnel' };
    case Command.Copy:
      return { type: 'copy-uri' };
    case Command.NextTunnel:
      return { type: 'show-tunnels' };
    case Command.Retry:
      return mode === 'list' ? { type: 'reload' } : { type: 'retry' };
    case Command.Accept:
      return { type: 'accept' };
    case Command.DeleteChar:
      return { type: 'backspace' };
    case Command.ClearInput:
      return { type: 'clear-input' };
    case Command.Log:
      return { type: 'open-log' };
    case Command.Pools:
      return mode === 'pools' ? { type: 'back' } : { type: 'open-pools' };
    case Command.Details:
      return { type: 'open-detail' };
    case Command.Close:
      return { type: 'back' };
    case Command.CancelQuery:
    case Command.Terminate:
      // The queries screen's: it reads its keys itself.
      return undefined;
  }
}

function logDetailAction(input: string, key: KeyPress, state: PickerState): PickerAction | undefined {
  const intent = detailKeyToIntent(input, key, detailViewport(state.columns, mainHeight(state)).height);
  switch (intent?.type) {
    case 'scroll':
      return { type: 'scroll-detail', delta: intent.delta };
    case 'close':
      return { type: 'back' };
    case 'help':
      return { type: 'help' };
    case 'quit':
      return { type: 'quit' };
    case undefined:
      return undefined;
  }
}

/**
 * The actions of one chunk of input. Ink hands over several characters at once when they arrive
 * together (typed fast, pasted, or sent by tmux): outside text input each character is a key of
 * its own, and a `/` switches to text input for the rest, so `/orders` filters as typed.
 */
export function inputToActions(state: PickerState, input: string, key: KeyPress): PickerAction[] {
  const presses = keyPresses(input, key);
  const actions: PickerAction[] = [];
  let current = state;
  for (let i = 0; i < presses.length; i++) {
    const mode = pickerMode(current);
    if ((mode === 'filter' || mode === 'login-text') && presses.length > 1 && isPrintable(presses[i]!)) {
      // A run of characters in text input is one action, as a paste.
      let text = '';
      while (i < presses.length && isPrintable(presses[i]!)) text += presses[i++]![0];
      i -= 1;
      actions.push({ type: 'type', text });
      current = pickerReducer(current, actions.at(-1)!);
      continue;
    }
    const [char, press] = presses[i]!;
    const action = keyToAction(current, char, press);
    if (!action) continue;
    actions.push(action);
    current = pickerReducer(current, action);
  }
  return actions;
}
