/**
 * The queries screen's state, its pure reducer and its keys: the server's active sessions
 * (refreshed with `r` and every few seconds), `c` cancels the selected session's query, `T`
 * terminates it after a y/n confirmation, and the outcome stays on screen; `?` shows every key.
 *
 * Work for the core is asked for with counters and fields the hooks watch: `connect` (log in
 * again), `listRequest` (list the sessions), `act` in phase `running` (cancel / terminate).
 */
import type { TuiActionOutcome, TuiErrorInfo, TuiLogin, TuiSession, TuiSessionAction } from '../../core/api/picker.js';
import { oneLine } from '../../format.js';
import { DETAIL_COMMANDS, detailKeyBar, detailScreenIntent, openDetail, scrollDetail, type Detail, type DetailViewport } from '../detail/state.js';
import { bindingLabel, Command, KEY_BINDINGS, LIST_MOVES, matchCommand, screenHelpRows, type KeyHint, type KeyPress } from '../keys.js';
import { clampCursor } from '../layout.js';
import { formatDuration } from '../../format.js';

export interface PendingAct {
  action: TuiSessionAction;
  pid: number;
  /** Who and what, for the confirmation and the spinner: `alice · select pg_sleep(60)`. */
  summary: string;
  phase: 'confirm' | 'running';
}

export interface ActOutcome extends TuiActionOutcome {
  action: TuiSessionAction;
  pid: number;
}

export interface QueriesScreenState {
  name: string;
  /** The login asked for; the one used once connected (the API may fill in what was left out). */
  login: TuiLogin;
  connection: 'connecting' | 'open' | 'failed';
  /** Bumped to log in again (after a failure). */
  connect: number;
  sessions: TuiSession[];
  /** Whether a listing came at least once. */
  loaded: boolean;
  cursor: number;
  /** The selected session's pid: the selection follows it across refreshes. */
  selectedPid: number | undefined;
  /** Bumped to ask for a listing; `listing` while one runs, `stale` when another is wanted after it. */
  listRequest: number;
  listing: boolean;
  stale: boolean;
  /** `HH:MM:SS` of the last listing. */
  listedAt: string | undefined;
  act: PendingAct | undefined;
  outcome: ActOutcome | undefined;
  /** Logging in or listing failed. */
  error: TuiErrorInfo | undefined;
  /** `?`: the keys of this screen instead of the table. */
  help: boolean;
  /** enter / v: the selected session whole (its query wrapped), as listed when it was opened. */
  detail: Detail | undefined;
}

export type QueriesAction =
  | { type: 'connected'; login: TuiLogin }
  | { type: 'connect-failed'; error: TuiErrorInfo }
  | { type: 'listed'; sessions: TuiSession[]; at: string }
  | { type: 'list-failed'; error: TuiErrorInfo }
  /** `r` (manual) or the timer (auto): a listing, or logging in again after a failure (manual only). */
  | { type: 'refresh'; auto?: boolean }
  | { type: 'move'; delta: number }
  | { type: 'request-act'; action: TuiSessionAction }
  | { type: 'confirm' }
  | { type: 'deny' }
  | { type: 'acted'; outcome: TuiActionOutcome }
  | { type: 'act-failed'; error: TuiErrorInfo }
  | { type: 'toggle-help' }
  | { type: 'open-detail' }
  | { type: 'close-detail' }
  | { type: 'scroll-detail'; delta: number; viewport: DetailViewport };

export type QueriesIntent = QueriesAction | { type: 'leave'; to: 'back' | 'quit' };

export function initialQueriesState(name: string, login: TuiLogin): QueriesScreenState {
  return {
    name,
    login,
    connection: 'connecting',
    connect: 1,
    sessions: [],
    loaded: false,
    cursor: 0,
    selectedPid: undefined,
    listRequest: 0,
    listing: false,
    stale: false,
    listedAt: undefined,
    act: undefined,
    outcome: undefined,
    error: undefined,
    help: false,
    detail: undefined,
  };
}

function requestList(state: QueriesScreenState): QueriesScreenState {
  if (state.connection !== 'open') return state;
  if (state.listing) return { ...state, stale: true };
  return { ...state, listRequest: state.listRequest + 1, listing: true, stale: false };
}

export function selectedSession(state: QueriesScreenState): TuiSession | undefined {
  return state.sessions[state.cursor];
}

export function queriesReducer(state: QueriesScreenState, action: QueriesAction): QueriesScreenState {
  switch (action.type) {
    case 'connected':
      return requestList({ ...state, connection: 'open', login: action.login, error: undefined });
    case 'connect-failed':
      return { ...state, connection: 'failed', listing: false, error: action.error };
    case 'listed': {
      const sessions = action.sessions;
      const kept = state.selectedPid === undefined ? -1 : sessions.findIndex((s) => s.pid === state.selectedPid);
      const cursor = kept >= 0 ? kept : clampCursor(state.cursor, sessions.length);
      const next: QueriesScreenState = {
        ...state,
        sessions,
        loaded: true,
        cursor,
        selectedPid: sessions[cursor]?.pid,
        listing: false,
        listedAt: action.at.slice(11, 19),
        error: undefined,
      };
      return state.stale ? requestList(next) : next;
    }
    case 'list-failed':
      return { ...state, listing: false, stale: false, error: action.error };
    case 'refresh':
      if (state.connection === 'failed') {
        if (action.auto) return state;
        return { ...state, connection: 'connecting', connect: state.connect + 1, error: undefined };
      }
      return requestList(state);
    case 'move': {
      if (state.act?.phase === 'confirm') return state;
      const cursor = clampCursor(state.cursor + action.delta, state.sessions.length);
      return { ...state, cursor, selectedPid: state.sessions[cursor]?.pid };
    }
    case 'request-act': {
      const session = selectedSession(state);
      if (!session || state.act || state.connection !== 'open') return state;
      const act: PendingAct = { action: action.action, pid: session.pid, summary: sessionSummary(session), phase: action.action === 'terminate' ? 'confirm' : 'running' };
      return { ...state, act, outcome: undefined };
    }
    case 'confirm':
      if (state.act?.phase !== 'confirm') return state;
      return { ...state, act: { ...state.act, phase: 'running' } };
    case 'deny':
      if (state.act?.phase !== 'confirm') return state;
      return { ...state, act: undefined };
    case 'acted':
      if (state.act?.phase !== 'running') return state;
      return requestList({ ...state, act: undefined, outcome: { ...action.outcome, action: state.act.action, pid: state.act.pid } });
    case 'toggle-help':
      return { ...state, help: !state.help };
    case 'open-detail': {
      const session = selectedSession(state);
      if (!session || queriesMode(state) !== 'list') return state;
      return { ...state, detail: sessionDetail(session, state.listedAt) };
    }
    case 'close-detail':
      return { ...state, detail: undefined };
    case 'scroll-detail':
      return state.detail ? { ...state, detail: scrollDetail(state.detail, action.delta, action.viewport) } : state;
    case 'act-failed':
      if (state.act?.phase !== 'running') return state;
      return requestList({
        ...state,
        act: undefined,
        outcome: { status: 'refused', message: action.error.message, ...(action.error.hint ? { hint: action.error.hint } : {}), action: state.act.action, pid: state.act.pid },
      });
  }
}

/** A session whole: every column, then its query with its own line breaks. */
export function sessionDetail(session: TuiSession, listedAt: string | undefined): Detail {
  const field = (label: string, value: string) => `${label.padEnd(9)}${value}`;
  const text = [
    field('pid', String(session.pid)),
    field('user', session.user ?? ''),
    field('database', session.database ?? ''),
    field('state', session.state ?? ''),
    field('duration', formatDuration(session.durationMs)),
    '',
    session.query ?? '(no query)',
  ].join('\n');
  return openDetail(`Session ${session.pid}${listedAt ? `, as listed at ${listedAt}` : ''}`, text);
}

/** `alice · select pg_sleep(60)`: who and what, on one line. */
export function sessionSummary(session: TuiSession): string {
  const query = oneLine(session.query ?? '');
  return `${session.user ?? '?'}${query ? ` · ${query.length > 60 ? `${query.slice(0, 59)}…` : query}` : ''}`;
}

/** What the line under the table says: the confirmation, the work in flight, or the last outcome. */
export function outcomeLine(outcome: ActOutcome): string {
  switch (outcome.status) {
    case 'done':
      return `Done: ${outcome.message}.`;
    case 'not-done':
      return `Not done: ${outcome.message}.`;
    case 'refused':
      return `Refused: ${outcome.message}`;
  }
}

export function actLabel(act: PendingAct): string {
  return act.action === 'cancel' ? `Cancelling the query of pid ${act.pid} (${act.summary})…` : `Terminating session ${act.pid} (${act.summary})…`;
}

export type QueriesMode = 'list' | 'confirm' | 'help' | 'detail';

export function queriesMode(state: QueriesScreenState): QueriesMode {
  if (state.act?.phase === 'confirm') return 'confirm';
  if (state.help) return 'help';
  return state.detail ? 'detail' : 'list';
}

/** The commands per mode in matching order, with what the key bar and `?` call them. */
export const QUERIES_COMMANDS: Readonly<Record<QueriesMode, ReadonlyArray<readonly [Command, string]>>> = {
  list: [
    [Command.CancelQuery, 'cancel query'],
    [Command.Terminate, 'terminate session'],
    [Command.Details, 'details'],
    [Command.Retry, 'refresh'],
    ...LIST_MOVES,
    [Command.Help, 'help'],
    [Command.Back, 'back'],
    [Command.Quit, 'quit'],
    [Command.ForceQuit, 'quit'],
  ],
  confirm: [
    [Command.Yes, 'terminate'],
    [Command.No, 'keep it'],
    [Command.Back, 'keep it'],
    [Command.ForceQuit, 'quit'],
  ],
  help: [
    [Command.Help, 'close help'],
    [Command.Back, 'close help'],
    [Command.Quit, 'quit'],
    [Command.ForceQuit, 'quit'],
  ],
  detail: DETAIL_COMMANDS,
};

/** The key bar per mode, with labels short enough for 80 columns (`?` has the long ones). */
const KEY_BAR: Readonly<Record<Exclude<QueriesMode, 'detail'>, ReadonlyArray<readonly [Command, string]>>> = {
  list: [
    [Command.CancelQuery, 'cancel'],
    [Command.Terminate, 'terminate'],
    [Command.Details, 'details'],
    [Command.Retry, 'refresh'],
    [Command.Help, 'help'],
    [Command.Back, 'back'],
    [Command.Quit, 'quit'],
  ],
  confirm: [
    [Command.Yes, 'terminate'],
    [Command.No, 'keep it'],
  ],
  help: [[Command.Back, 'close help']],
};

export function queriesKeyBar(state: QueriesScreenState): KeyHint[] {
  const mode = queriesMode(state);
  if (mode === 'detail') return detailKeyBar();
  return KEY_BAR[mode].map(([command, label]) => ({ keys: bindingLabel(KEY_BINDINGS[command][0]!), label }));
}

/** Every key of the list, for `?`: the keys and what they do. */
export function queriesHelpRows(): KeyHint[] {
  return screenHelpRows(QUERIES_COMMANDS.list, [[Command.Yes, 'confirm terminate']]);
}

/**
 * The intent of one key press, or undefined when the key does nothing here. `detail` is the room a
 * details view has (for scrolling it).
 */
export function queriesKeyToIntent(state: QueriesScreenState, input: string, key: KeyPress, pageRows = 10, detail: DetailViewport = { width: 80, height: pageRows }): QueriesIntent | undefined {
  const mode = queriesMode(state);
  if (mode === 'detail') return detailScreenIntent(input, key, detail);
  switch (matchCommand(QUERIES_COMMANDS[mode].map(([c]) => c), input, key)) {
    case Command.Details:
      return { type: 'open-detail' };
    case Command.CancelQuery:
      return { type: 'request-act', action: 'cancel' };
    case Command.Terminate:
      return { type: 'request-act', action: 'terminate' };
    case Command.Retry:
      return { type: 'refresh' };
    case Command.Up:
      return { type: 'move', delta: -1 };
    case Command.Down:
      return { type: 'move', delta: 1 };
    case Command.PageUp:
      return { type: 'move', delta: -pageRows };
    case Command.PageDown:
      return { type: 'move', delta: pageRows };
    case Command.Top:
      return { type: 'move', delta: -Infinity };
    case Command.Bottom:
      return { type: 'move', delta: Infinity };
    case Command.Yes:
      return { type: 'confirm' };
    case Command.No:
      return { type: 'deny' };
    case Command.Help:
      return { type: 'toggle-help' };
    case Command.Back:
      if (mode === 'help') return { type: 'toggle-help' };
      return mode === 'confirm' ? { type: 'deny' } : { type: 'leave', to: 'back' };
    case Command.Quit:
    case Command.ForceQuit:
      return { type: 'leave', to: 'quit' };
    default:
      return undefined;
  }
}
