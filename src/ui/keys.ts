/**
 * Key bindings as data (after gemini-cli's keyMatchers): every command of the UI maps to the keys
 * that trigger it, and components ask "is this Command.Connect?" through the pure functions below
 * instead of comparing raw keys. The help screen and the key bar are generated from this table.
 */

/** The subset of Ink's `Key` the bindings look at (so tests and Ink's own type both fit). */
export interface KeyPress {
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  ctrl?: boolean;
  meta?: boolean;
  shift?: boolean;
  tab?: boolean;
  backspace?: boolean;
  delete?: boolean;
}

export enum Command {
  Up = 'up',
  Down = 'down',
  PageUp = 'page-up',
  PageDown = 'page-down',
  Top = 'top',
  Bottom = 'bottom',
  Connect = 'connect',
  Tunnel = 'tunnel',
  Doctor = 'doctor',
  Queries = 'queries',
  Filter = 'filter',
  Help = 'help',
  Back = 'back',
  Quit = 'quit',
  ForceQuit = 'force-quit',
  ShowPassword = 'show-password',
  CloseTunnel = 'close-tunnel',
  /** Tunnel details: put the connection URI (with the tunnel password) on the clipboard. */
  Copy = 'copy',
  NextTunnel = 'next-tunnel',
  Retry = 'retry',
  Accept = 'accept',
  DeleteChar = 'delete-char',
  /** In a text prompt: clear what was typed (ctrl+u, as in a shell). */
  ClearInput = 'clear-input',
  /** Queries screen: cancel the selected session's running query. */
  CancelQuery = 'cancel-query',
  /** Queries screen: end the selected session (asks first). */
  Terminate = 'terminate',
  Yes = 'yes',
  No = 'no',
  /** A row whose text is cut (a query, a check, a log line): the whole of it, wrapped. */
  Details = 'details',
  /** A details view: close it (as esc does). */
  Close = 'close',
  /** The picker: the broker log, line by line. */
  Log = 'log',
  /** The picker: the pools of the open tunnels, key by key. */
  Pools = 'pools',
}

/** One way to press a command: a named key, or a character, optionally with ctrl. */
export type KeyBinding =
  | { key: 'up' | 'down' | 'pageUp' | 'pageDown' | 'home' | 'end' | 'return' | 'escape' | 'tab' | 'backspace' | 'delete' }
  | { char: string; ctrl?: boolean };

/** The bindings. Character bindings only fire outside text input (see {@link matchCommand}). */
export const KEY_BINDINGS: Readonly<Record<Command, readonly KeyBinding[]>> = {
  [Command.Up]: [{ key: 'up' }, { char: 'k' }, { char: 'p', ctrl: true }],
  [Command.Down]: [{ key: 'down' }, { char: 'j' }, { char: 'n', ctrl: true }],
  [Command.PageUp]: [{ key: 'pageUp' }],
  [Command.PageDown]: [{ key: 'pageDown' }],
  [Command.Top]: [{ key: 'home' }, { char: 'g' }],
  [Command.Bottom]: [{ key: 'end' }, { char: 'G' }],
  [Command.Connect]: [{ key: 'return' }],
  [Command.Tunnel]: [{ char: 't' }],
  [Command.Doctor]: [{ char: 'd' }],
  [Command.Queries]: [{ char: 'q' }],
  [Command.Filter]: [{ char: '/' }],
  [Command.Help]: [{ char: '?' }],
  [Command.Back]: [{ key: 'escape' }],
  // `q` is the queries screen (issue 8); quitting takes a capital Q (or ctrl+c) so it is never hit by accident.
  [Command.Quit]: [{ char: 'Q' }],
  [Command.ForceQuit]: [{ char: 'c', ctrl: true }],
  [Command.ShowPassword]: [{ char: 'p' }],
  [Command.CloseTunnel]: [{ char: 'x' }],
  [Command.Copy]: [{ char: 'c' }],
  [Command.NextTunnel]: [{ key: 'tab' }],
  [Command.Retry]: [{ char: 'r' }],
  [Command.Accept]: [{ key: 'return' }],
  [Command.DeleteChar]: [{ key: 'backspace' }, { key: 'delete' }],
  [Command.ClearInput]: [{ char: 'u', ctrl: true }],
  [Command.CancelQuery]: [{ char: 'c' }],
  // A capital letter: nothing a vim user presses to move (k) may end someone's session.
  [Command.Terminate]: [{ char: 'T' }],
  [Command.Yes]: [{ char: 'y' }, { char: 'Y' }],
  [Command.No]: [{ char: 'n' }, { char: 'N' }],
  // v where enter is taken (the picker's list connects with it).
  [Command.Details]: [{ key: 'return' }, { char: 'v' }],
  [Command.Close]: [{ char: 'q' }],
  [Command.Log]: [{ char: 'l' }],
  [Command.Pools]: [{ char: 'o' }],
};

/** Moving through a list, as the screens' command tables list it (with its help labels). */
export const LIST_MOVES: ReadonlyArray<readonly [Command, string]> = [
  [Command.Up, 'up'],
  [Command.Down, 'down'],
  [Command.PageUp, 'page up'],
  [Command.PageDown, 'page down'],
  [Command.Top, 'first'],
  [Command.Bottom, 'last'],
];

/** How a binding is written in the help and the key bar. */
export function bindingLabel(binding: KeyBinding): string {
  if ('key' in binding) {
    const names: Record<string, string> = {
      up: '↑',
      down: '↓',
      pageUp: 'PgUp',
      pageDown: 'PgDn',
      home: 'Home',
      end: 'End',
      return: 'enter',
      escape: 'esc',
      tab: 'tab',
      backspace: 'backspace',
      delete: 'del',
    };
    return names[binding.key] ?? binding.key;
  }
  return binding.ctrl ? `ctrl+${binding.char}` : binding.char;
}

/** All the keys of a command, e.g. `↑/k/ctrl+p`. */
export function commandKeys(command: Command): string {
  return KEY_BINDINGS[command].map(bindingLabel).join('/');
}

/**
 * The bindings of `command` that still reach it on a screen whose commands are `commands` (in
 * priority order): a binding an earlier command also has is that command's. E.g. on the queries
 * screen `k` terminates, so moving up is only ↑ and ctrl+p there.
 */
export function effectiveBindings(commands: readonly Command[], command: Command): KeyBinding[] {
  const earlier = commands.slice(0, Math.max(0, commands.indexOf(command)));
  const same = (a: KeyBinding, b: KeyBinding) => JSON.stringify(a) === JSON.stringify(b);
  return KEY_BINDINGS[command].filter((binding) => !earlier.some((other) => KEY_BINDINGS[other].some((b) => same(b, binding))));
}

/** The keys of `command` that reach it among `commands`, e.g. `↑/ctrl+p`. */
export function screenKeys(commands: readonly Command[], command: Command): string {
  return effectiveBindings(commands, command).map(bindingLabel).join('/');
}

export interface KeyHint {
  keys: string;
  label: string;
}

/**
 * A screen's rows for `?`: each label once, with every key that reaches it there (`Q/ctrl+c quit`);
 * `extra` are commands of another mode of the screen (a y/n question), whose keys are all theirs.
 */
export function screenHelpRows(commands: ReadonlyArray<readonly [Command, string]>, extra: ReadonlyArray<readonly [Command, string]> = []): KeyHint[] {
  const order = commands.map(([c]) => c);
  return mergeByLabel([
    ...commands.map(([command, label]) => ({ keys: screenKeys(order, command), label })),
    ...extra.map(([command, label]) => ({ keys: commandKeys(command), label })),
  ]);
}

/** Rows with the same label as one row with all their keys: `Q/ctrl+c quit`; rows without keys go. */
export function mergeByLabel(rows: readonly KeyHint[]): KeyHint[] {
  const merged = new Map<string, string[]>();
  for (const row of rows) {
    if (row.keys === '') continue;
    const keys = merged.get(row.label) ?? [];
    if (!keys.includes(row.keys)) keys.push(row.keys);
    merged.set(row.label, keys);
  }
  return [...merged].map(([label, keys]) => ({ keys: keys.join('/'), label }));
}

/** Whether one key press is `binding`. */
export function matchesBinding(binding: KeyBinding, input: string, key: KeyPress): boolean {
  if ('key' in binding) {
    switch (binding.key) {
      case 'up':
        return Boolean(key.upArrow);
      case 'down':
        return Boolean(key.downArrow);
      case 'pageUp':
        return Boolean(key.pageUp);
      case 'pageDown':
        return Boolean(key.pageDown);
      case 'home':
        return Boolean(key.home);
      case 'end':
        return Boolean(key.end);
      case 'return':
        return Boolean(key.return);
      case 'escape':
        return Boolean(key.escape);
      case 'tab':
        return Boolean(key.tab) && !key.shift;
      case 'backspace':
        return Boolean(key.backspace);
      case 'delete':
        return Boolean(key.delete);
    }
  }
  if (Boolean(binding.ctrl) !== Boolean(key.ctrl) || key.meta) return false;
  return input === binding.char;
}

/** Whether the key press triggers `command`. */
export function matches(command: Command, input: string, key: KeyPress): boolean {
  return KEY_BINDINGS[command].some((binding) => matchesBinding(binding, input, key));
}

/**
 * The first of `commands` (in the order given: the screen's priority) that the key press triggers.
 * With `textInput`, plain printable characters belong to the text being typed: only named keys
 * and ctrl combinations are matched.
 */
export function matchCommand(commands: readonly Command[], input: string, key: KeyPress, options: { textInput?: boolean } = {}): Command | undefined {
  return commands.find((command) =>
    KEY_BINDINGS[command].some((binding) => {
      if (options.textInput && 'char' in binding && !binding.ctrl) return false;
      return matchesBinding(binding, input, key);
    }),
  );
}

/** Printable text typed (possibly pasted), or '' for control keys. */
export function typedText(input: string, key: KeyPress): string {
  if (key.ctrl || key.meta || key.escape || key.return || key.tab || key.backspace || key.delete) return '';
  if (key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown) return '';
  // eslint-disable-next-line no-control-regex
  return input.replace(/[\u0000-\u001f\u007f]/g, '');
}

/** Keys that are one control character, as Ink names them when they come alone. */
const CONTROL_KEYS: Readonly<Record<string, KeyPress>> = {
  '\r': { return: true },
  '\t': { tab: true },
  '\b': { backspace: true },
  '\u007f': { delete: true },
};

/**
 * One chunk of input as separate key presses: Ink hands over several characters at once when they
 * arrive together (typed fast, over a slow SSH link, pasted, or sent by tmux), e.g. `e` and two
 * backspaces as one string. Printable characters and the single-character keys (enter, tab,
 * backspace) are split into one press each; escape sequences and ctrl keys come alone already.
 */
export function keyPresses(input: string, key: KeyPress): Array<[string, KeyPress]> {
  const chars = [...input];
  const splittable = !key.ctrl && !key.meta && chars.length > 1 && chars.every((c) => (c >= ' ' && c !== '\u007f') || c in CONTROL_KEYS);
  if (!splittable) return [[input, key]];
  return chars.map((c) => (c in CONTROL_KEYS ? ['', { ...CONTROL_KEYS[c] }] : [c, {}]));
}

/** Whether a press from {@link keyPresses} is a printable character (text, in a text field). */
export function isPrintable([char, press]: [string, KeyPress]): boolean {
  return char.length > 0 && Object.keys(press).length === 0;
}
