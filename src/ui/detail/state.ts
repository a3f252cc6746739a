/**
 * A details view: the whole text of a row the screen cuts to fit (a query, a doctor check, a
 * broker log line), wrapped, scrolled when longer than the space it has; esc or q closes it. The
 * queries and doctor screens and the picker's broker log each hold one in their state.
 */
import { Command, bindingLabel, KEY_BINDINGS, LIST_MOVES, matchCommand, type KeyHint, type KeyPress } from '../keys.js';
import { wrapText } from '../layout.js';

export interface Detail {
  /** One line above the text: what it is the whole of. */
  title: string;
  text: string;
  /** The first line shown. */
  scroll: number;
}

/** The room the text has: columns, and rows under the title. */
export interface DetailViewport {
  width: number;
  height: number;
}

export function openDetail(title: string, text: string): Detail {
  return { title, text, scroll: 0 };
}

export function detailLines(detail: Pick<Detail, 'text'>, width: number): string[] {
  return wrapText(detail.text, width);
}

/**
 * The viewport of a details view given `rows` for all of it: its title, and the line saying which
 * lines show when they do not all fit.
 */
export function detailViewport(columns: number, rows: number): DetailViewport {
  return { width: columns, height: Math.max(1, rows - 2) };
}

/** Scrolled by `delta` lines (±Infinity: to an end), never past the last screenful. */
export function scrollDetail(detail: Detail, delta: number, viewport: DetailViewport): Detail {
  const last = Math.max(0, detailLines(detail, viewport.width).length - viewport.height);
  const scroll = Math.max(0, Math.min(last, detail.scroll + delta));
  return scroll === detail.scroll ? detail : { ...detail, scroll };
}

/** The keys of a details view, in matching order, with what the key bar and `?` call them. */
export const DETAIL_COMMANDS: ReadonlyArray<readonly [Command, string]> = [
  ...LIST_MOVES,
  [Command.Back, 'close'],
  [Command.Close, 'close'],
  [Command.Help, 'help'],
  [Command.Quit, 'quit'],
  [Command.ForceQuit, 'quit'],
];

export type DetailIntent = { type: 'scroll'; delta: number } | { type: 'close' } | { type: 'help' } | { type: 'quit' };

/** The intent of a key press in a details view whose text shows `pageRows` lines at once. */
export function detailKeyToIntent(input: string, key: KeyPress, pageRows: number): DetailIntent | undefined {
  switch (matchCommand(DETAIL_COMMANDS.map(([c]) => c), input, key)) {
    case Command.Up:
      return { type: 'scroll', delta: -1 };
    case Command.Down:
      return { type: 'scroll', delta: 1 };
    case Command.PageUp:
      return { type: 'scroll', delta: -Math.max(1, pageRows - 1) };
    case Command.PageDown:
      return { type: 'scroll', delta: Math.max(1, pageRows - 1) };
    case Command.Top:
      return { type: 'scroll', delta: -Infinity };
    case Command.Bottom:
      return { type: 'scroll', delta: Infinity };
    case Command.Back:
    case Command.Close:
      return { type: 'close' };
    case Command.Help:
      return { type: 'help' };
    case Command.Quit:
    case Command.ForceQuit:
      return { type: 'quit' };
    default:
      return undefined;
  }
}

/** What a key in a details view asks of the screen it is open over (the doctor and queries screens). */
export type DetailScreenIntent =
  | { type: 'scroll-detail'; delta: number; viewport: DetailViewport }
  | { type: 'close-detail' }
  | { type: 'toggle-help' }
  | { type: 'leave'; to: 'quit' };

export function detailScreenIntent(input: string, key: KeyPress, viewport: DetailViewport): DetailScreenIntent | undefined {
  const intent = detailKeyToIntent(input, key, viewport.height);
  switch (intent?.type) {
    case 'scroll':
      return { type: 'scroll-detail', delta: intent.delta, viewport };
    case 'close':
      return { type: 'close-detail' };
    case 'help':
      return { type: 'toggle-help' };
    case 'quit':
      return { type: 'leave', to: 'quit' };
    default:
      return undefined;
  }
}

export function detailKeyBar(): KeyHint[] {
  return [
    { keys: '↑↓', label: 'scroll' },
    { keys: 'PgUp/PgDn', label: 'page' },
    { keys: `${bindingLabel(KEY_BINDINGS[Command.Back][0]!)}/${bindingLabel(KEY_BINDINGS[Command.Close][0]!)}`, label: 'close' },
    { keys: '?', label: 'help' },
    { keys: 'Q', label: 'quit' },
  ];
}
