/**
 * The picker's state and its pure reducer. Every key press becomes a typed {@link PickerAction};
 * work for the core (load databases, open or close a tunnel, run a client, quit) is asked for by
 * setting `pending`, which the effects hook carries out and answers with another action.
 */
import type { CoreEvent, TuiDatabase, TuiErrorInfo, TuiLogin, TuiPool, TuiTunnel } from '../../core/api/picker.js';
import { detailLines, detailViewport, openDetail, scrollDetail, type Detail } from '../detail/state.js';
import { fuzzyFilter } from '../fuzzy.js';
import { clampCursor, textLines } from '../layout.js';

export const WILDCARD = '*';

/** What a chosen login is for: psql / mariadb, a tunnel, or the queries screen. */
export type Purpose = 'connect' | 'tunnel' | 'queries';

export type Pending =
  | { kind: 'load' }
  | { kind: 'open-tunnel'; name: string; login: TuiLogin }
  | { kind: 'close-tunnel'; id: string }
  /** Put `text` on the terminal's clipboard (OSC 52); it may hold the tunnel password. */
  | { kind: 'copy'; text: string; what: string; /** A background reload it cut short, to start again. */ reload?: boolean }
  /** Getting the client's tunnel ready (the Entra token) while the spinner runs; esc cancels. */
  | { kind: 'connect'; name: string; login: TuiLogin }
  /** Ready: hand the terminal to the client. */
  | { kind: 'launch'; name: string; login: TuiLogin }
  | { kind: 'quit' };

export interface LoginStep {
  field: 'user' | 'name';
  /** Values to pick from with the arrows (allowed values, or suggestions when `*` is allowed). */
  choices: string[];
  cursor: number;
  /** `*` is allowed: any typed value goes (the roles are checked again when connecting). */
  free: boolean;
  input: string;
  /**
   * A name step where the roles allow any name: the server's databases are being listed (the hooks
   * ask the core), were listed, or could not be (the note says why; typing still works).
   */
  listing?: NameListing;
}

export type NameListing = { state: 'loading' } | { state: 'listed'; count: number } | { state: 'failed'; message: string };

export type Overlay =
  | { kind: 'none' }
  /** `?`; esc goes back to `back` (the overlay it was opened over). */
  | { kind: 'help'; back?: Overlay }
  /**
   * The broker log line by line: `selected` is a line's id (undefined: the newest, following new
   * lines); `detail` shows the selected line whole.
   */
  | { kind: 'log'; selected: number | undefined; detail: Detail | undefined }
  | { kind: 'login'; purpose: Purpose; name: string; dbUser?: string; step: LoginStep }
  | { kind: 'tunnel'; tunnelId: string; showPassword: boolean }
  /** The pools of the open tunnels (`o`), key by key, as the broker counts them now. */
  | { kind: 'pools' }
  | { kind: 'error'; title: string; error: TuiErrorInfo; retry?: Pending }
  /** The doctor screen (src/ui/doctor) for database `name`; it has its own state and keys. */
  | { kind: 'doctor'; name: string }
  /** The queries screen (src/ui/queries) for database `name` as `login`. */
  | { kind: 'queries'; name: string; login: TuiLogin }
  /** A y/n question before `then` ends open sessions; no goes back to `back`. */
  | { kind: 'confirm'; question: string; then: PickerAction; back: Overlay };

export interface LogLine {
  id: number;
  time: string;
  level: 'info' | 'warn' | 'error';
  text: string;
}

export interface TunnelRow extends TuiTunnel {
  sessions: number;
}

export interface PickerState {
  status: 'loading' | 'ready' | 'failed';
  databases: TuiDatabase[];
  filter: string;
  filtering: boolean;
  /** Index into {@link visibleDatabases}. */
  cursor: number;
  overlay: Overlay;
  pending: Pending | undefined;
  /** What the spinner says while `pending` runs. */
  busy: string | undefined;
  /** One line under the list: the last outcome (client exit, tunnel closed...). */
  notice: string | undefined;
  tunnels: TunnelRow[];
  /** The open tunnels' pools, as last read from the core (while tunnels are open). */
  pools: TuiPool[];
  /** Broker log; the view prints `log.slice(logBase)` with <Static> (earlier lines are on screen). */
  log: LogLine[];
  logBase: number;
  /** Sequence number of the last core event seen. */
  lastSeq: number;
  columns: number;
  rows: number;
}

export type PickerAction =
  | { type: 'loaded'; databases: TuiDatabase[] }
  | { type: 'failed'; title: string; error: TuiErrorInfo; retry?: Pending }
  | { type: 'resize'; columns: number; rows: number }
  | { type: 'move'; delta: number }
  | { type: 'move-page'; direction: 1 | -1 }
  | { type: 'move-to'; where: 'top' | 'bottom' }
  | { type: 'filter-start' }
  | { type: 'type'; text: string }
  | { type: 'backspace' }
  | { type: 'clear-input' }
  | { type: 'accept' }
  | { type: 'back' }
  | { type: 'request'; purpose: Purpose }
  | { type: 'open-doctor' }
  | { type: 'help' }
  | { type: 'show-tunnels' }
  | { type: 'toggle-password' }
  | { type: 'close-tunnel'; confirmed?: boolean }
  | { type: 'confirm-yes' }
  | { type: 'confirm-no' }
  | { type: 'copy-uri' }
  | { type: 'copied'; what: string }
  | { type: 'retry' }
  | { type: 'reload' }
  | { type: 'quit'; confirmed?: boolean }
  | { type: 'tunnel-opened'; tunnel: TuiTunnel }
  /** The client's tunnel is ready. */
  | { type: 'client-ready' }
  /** esc / ctrl+c while connecting or opening a tunnel. */
  | { type: 'cancel' }
  | { type: 'tunnel-close-done' }
  | { type: 'core-events'; events: CoreEvent[] }
  | { type: 'client-exited'; name: string; exitCode: number; client: string }
  | { type: 'client-failed'; error: TuiErrorInfo }
  /** The server's databases for the name step of `name` as `dbUser` (recent first, from the core). */
  | { type: 'names-listed'; name: string; dbUser: string; names: string[] }
  | { type: 'names-failed'; name: string; dbUser: string; error: TuiErrorInfo }
  | { type: 'open-log' }
  | { type: 'open-pools' }
  /** The pools' counters, read again from the core. */
  | { type: 'pools'; pools: TuiPool[] }
  /** The broker log: the selected line whole. */
  | { type: 'open-detail' }
  | { type: 'scroll-detail'; delta: number };

export function initialPickerState(size: { columns: number; rows: number } = { columns: 80, rows: 24 }): PickerState {
  return {
    status: 'loading',
    databases: [],
    filter: '',
    filtering: false,
    cursor: 0,
    overlay: { kind: 'none' },
    pending: { kind: 'load' },
    busy: 'Loading databases…',
    notice: undefined,
    tunnels: [],
    pools: [],
    log: [],
    logBase: 0,
    lastSeq: 0,
    columns: size.columns,
    rows: size.rows,
  };
}

/** The tunnel's URI with its password, for a GUI client: `postgres://user:password@host:port/db`. */
export function uriWithPassword(tunnel: Pick<TuiTunnel, 'uri' | 'password'>): string {
  const scheme = tunnel.uri.indexOf('://');
  const at = tunnel.uri.indexOf('@', scheme + 3);
  if (scheme < 0 || at < 0) return tunnel.uri;
  return `${tunnel.uri.slice(0, at)}:${encodeURIComponent(tunnel.password)}${tunnel.uri.slice(at)}`;
}

/** Recent databases first (most recent connection first), then the others by name. */
export function orderDatabases(databases: readonly TuiDatabase[]): TuiDatabase[] {
  const lastUse = (db: TuiDatabase): string => db.recent[0]?.at ?? '';
  return [...databases].sort((a, b) => {
    const ra = lastUse(a);
    const rb = lastUse(b);
    if (ra !== rb) return ra < rb ? 1 : -1;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

export function visibleDatabases(state: Pick<PickerState, 'databases' | 'filter'>): TuiDatabase[] {
  // Beside names and labels, the protocol and the database users a row shows.
  return fuzzyFilter(orderDatabases(state.databases), state.filter, (db) => [db.protocol, ...db.dbUsers.filter((u) => u !== '*')]);
}

export function selectedDatabase(state: PickerState): TuiDatabase | undefined {
  return visibleDatabases(state)[state.cursor];
}

/** Rows the live area gives the database list at this terminal height (at least 3). */
export function listHeight(state: Pick<PickerState, 'rows' | 'tunnels'>): number {
  // header, column headings, filter/notice line, details (2), broker title, tunnels (max 3 +
  // "more"), key bar, and one spare row so the live area never reaches the terminal's height
  // (Ink would clear it all).
  const tunnelRows = Math.min(state.tunnels.length, 3) + (state.tunnels.length > 3 ? 1 : 0);
  const fixed = 1 + 1 + 1 + 2 + 1 + Math.max(1, tunnelRows) + 1 + 1;
  return Math.max(3, state.rows - fixed);
}

/**
 * Rows of the main area (list + details, or the open overlay): what its content needs, at most
 * what the terminal leaves ({@link listHeight} + the two detail lines).
 */
export function mainHeight(state: PickerState): number {
  const max = listHeight(state) + 3;
  const lines = (text: string) => Math.max(1, Math.ceil(text.length / Math.max(20, state.columns)));
  const overlay = state.overlay;
  let wanted: number;
  switch (overlay.kind) {
    case 'none':
      wanted = Math.max(1, visibleDatabases(state).length) + 3;
      break;
    case 'login':
      wanted = 2 + listingLines(overlay.step, state.columns) + overlay.step.choices.length;
      break;
    case 'tunnel': {
      const tunnel = state.tunnels.find((t) => t.id === overlay.tunnelId);
      // Title, host, port, user, database, password, uri; where the password is kept and the TLS CA.
      wanted = 7 + (tunnel ? (tunnel.passwordFile ? 1 : 0) + (tunnel.caFile ? 1 : 0) + lines(tunnel.command) : 1);
      break;
    }
    case 'error':
      wanted = 2 + lines(`error: ${overlay.error.message}`) + (overlay.error.hint ? lines(`hint: ${overlay.error.hint}`) : 0);
      break;
    case 'help':
      // Shown without the broker panel (its title and tunnel rows).
      return max + 1 + Math.max(1, Math.min(state.tunnels.length, 3) + (state.tunnels.length > 3 ? 1 : 0));
    case 'pools':
      wanted = poolLines(state.pools);
      break;
    case 'log':
      // The title and the lines; a line whole with a spare row for where it is (when it is cut).
      wanted = overlay.detail ? detailLines(overlay.detail, state.columns).length + 2 : 1 + Math.max(1, state.log.length);
      break;
    case 'doctor':
    case 'queries':
      wanted = max;
      break;
    case 'confirm':
      wanted = mainHeight({ ...state, overlay: overlay.back }) + lines(overlay.question);
      break;
  }
  return Math.min(max, wanted);
}

/** What the name step says about listing the server's databases, as one line (or two for a failure). */
export function listingNote(step: LoginStep, name: string, dbUser: string | undefined): string | undefined {
  const listing = step.listing;
  if (!listing) return undefined;
  switch (listing.state) {
    case 'loading':
      return `Listing the databases of ${name}${dbUser ? ` as ${dbUser}` : ''}…`;
    case 'listed':
      return `${listing.count} database${listing.count === 1 ? '' : 's'} on the server you may use, recent first`;
    case 'failed':
      return `Could not list the server's databases (${listing.message}); type a name or pick one below.`;
  }
}

/** Lines the listing note takes under the input (a failure's reason gets two). */
export function listingLines(step: LoginStep, columns: number): number {
  if (!step.listing) return 0;
  return step.listing.state === 'failed' ? Math.min(2, textLines(listingNote(step, '', '') ?? '', columns)) : 1;
}

/** The login step for `field`, or the value itself when the roles leave only one. */
export function loginStep(db: TuiDatabase, field: 'user' | 'name'): LoginStep | { value: string } {
  const allowed = field === 'user' ? db.dbUsers : db.dbNames;
  const recent = unique(db.recent.map((r) => (field === 'user' ? r.dbUser : r.dbName)));
  if (allowed.includes(WILDCARD)) {
    const suggestions = unique([...recent, ...(field === 'name' ? [db.defaultDbName] : []), ...allowed.filter((v) => v !== WILDCARD)]);
    // Any name: the server's own databases join the suggestions once listed (as the chosen user).
    return { field, choices: suggestions, cursor: 0, free: true, input: '', ...(field === 'name' ? { listing: { state: 'loading' as const } } : {}) };
  }
  if (field === 'name' && allowed.length === 0) return { value: db.defaultDbName };
  if (allowed.length === 1) return { value: allowed[0]! };
  const ordered = unique([...recent.filter((v) => allowed.includes(v)), ...allowed]);
  return { field, choices: ordered, cursor: 0, free: false, input: '' };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** From a chosen user, the next overlay or the pending request. */
function afterUser(state: PickerState, db: TuiDatabase, purpose: Purpose, dbUser: string): PickerState {
  const name = loginStep(db, 'name');
  if ('value' in name) return requestLogin(state, purpose, db.name, { dbUser, dbName: name.value });
  return { ...state, overlay: { kind: 'login', purpose, name: db.name, dbUser, step: name } };
}

function requestLogin(state: PickerState, purpose: Purpose, name: string, login: TuiLogin): PickerState {
  if (purpose === 'queries') return { ...state, overlay: { kind: 'queries', name, login }, notice: undefined };
  const pending: Pending = purpose === 'connect' ? { kind: 'connect', name, login } : { kind: 'open-tunnel', name, login };
  const busy = purpose === 'connect' ? `Connecting to ${name}… (esc cancels)` : `Opening a tunnel to ${name}… (esc cancels)`;
  return { ...state, overlay: { kind: 'none' }, pending, busy, notice: undefined };
}

/**
 * The login of the queries screen without asking: the last one used on the database, else the
 * only values the roles allow (`*` names: the default database). Undefined when the roles leave a
 * choice: the login chooser asks then.
 */
export function queriesLogin(db: TuiDatabase): TuiLogin | undefined {
  const last = db.recent[0];
  if (last) return { dbUser: last.dbUser, dbName: last.dbName };
  const user = loginStep(db, 'user');
  if (!('value' in user)) return undefined;
  if (db.dbNames.includes(WILDCARD)) return { dbUser: user.value, dbName: db.defaultDbName };
  const name = loginStep(db, 'name');
  return 'value' in name ? { dbUser: user.value, dbName: name.value } : undefined;
}

function startRequest(state: PickerState, purpose: Purpose): PickerState {
  const db = selectedDatabase(state);
  // A background reload does not hold up the queries screen (it sets no pending work of its own).
  if (!db || (state.pending && !(purpose === 'queries' && state.pending.kind === 'load'))) return state;
  if (purpose === 'queries') {
    const login = queriesLogin(db);
    if (login) return requestLogin(state, purpose, db.name, login);
  }
  const user = loginStep(db, 'user');
  if ('value' in user) return afterUser(state, db, purpose, user.value);
  return { ...state, filtering: false, overlay: { kind: 'login', purpose, name: db.name, step: user } };
}

function acceptLogin(state: PickerState, overlay: Extract<Overlay, { kind: 'login' }>): PickerState {
  const { step } = overlay;
  const typed = step.input.trim();
  const value = step.free && typed !== '' ? typed : step.choices[step.cursor];
  if (value === undefined) {
    if (step.field === 'user') return { ...state, notice: 'Type a database user (your roles allow any).' };
    return state;
  }
  const db = state.databases.find((d) => d.name === overlay.name);
  if (!db) return { ...state, overlay: { kind: 'none' } };
  if (step.field === 'user') return afterUser(state, db, overlay.purpose, value);
  return requestLogin(state, overlay.purpose, db.name, { dbUser: overlay.dbUser ?? '', dbName: value });
}

function withStep(state: PickerState, overlay: Extract<Overlay, { kind: 'login' }>, step: LoginStep): PickerState {
  return { ...state, overlay: { ...overlay, step } };
}

export function pickerReducer(state: PickerState, action: PickerAction): PickerState {
  const overlay = state.overlay;
  switch (action.type) {
    case 'loaded': {
      const databases = action.databases;
      // Keep the selection on the same database across a reload.
      const selected = selectedDatabase(state)?.name;
      const loading = state.pending?.kind === 'load';
      const next: PickerState = { ...state, status: 'ready', databases, ...(loading ? { pending: undefined, busy: undefined } : {}) };
      const index = selected ? visibleDatabases(next).findIndex((d) => d.name === selected) : -1;
      return { ...next, cursor: index >= 0 ? index : clampCursor(state.cursor, visibleDatabases(next).length) };
    }
    case 'failed':
      // A failed background reload (after a client or a tunnel) keeps the list it has.
      if (action.retry?.kind === 'load' && state.status === 'ready' && state.pending?.kind === 'load') {
        return { ...state, pending: undefined, busy: undefined, notice: `Could not reload the databases: ${action.error.message}` };
      }
      return {
        ...state,
        status: state.status === 'loading' ? 'failed' : state.status,
        pending: undefined,
        busy: undefined,
        overlay: { kind: 'error', title: action.title, error: action.error, ...(action.retry ? { retry: action.retry } : {}) },
      };
    case 'resize':
      return { ...state, columns: action.columns, rows: action.rows };
    case 'move': {
      if (overlay.kind === 'login') {
        const step = overlay.step;
        return withStep(state, overlay, { ...step, cursor: clampCursor(step.cursor + action.delta, step.choices.length) });
      }
      if (overlay.kind === 'tunnel' || overlay.kind === 'help' || overlay.kind === 'pools') return state;
      if (overlay.kind === 'log') {
        if (overlay.detail || state.log.length === 0) return state;
        const index = clampCursor(selectedLogIndex(state.log, overlay.selected) + action.delta, state.log.length);
        return { ...state, overlay: { ...overlay, selected: state.log[index]!.id } };
      }
      return { ...state, cursor: clampCursor(state.cursor + action.delta, visibleDatabases(state).length) };
    }
    case 'move-page':
      return pickerReducer(state, { type: 'move', delta: action.direction * listHeight(state) });
    case 'move-to':
      return pickerReducer(state, { type: 'move', delta: action.where === 'top' ? -Infinity : Infinity });
    case 'filter-start':
      if (overlay.kind !== 'none') return state;
      return { ...state, filtering: true };
    case 'type': {
      if (overlay.kind === 'login') {
        return withStep(state, overlay, { ...overlay.step, input: overlay.step.input + action.text });
      }
      if (!state.filtering || overlay.kind !== 'none') return state;
      return { ...state, filter: state.filter + action.text, cursor: 0 };
    }
    case 'clear-input': {
      if (overlay.kind === 'login') return withStep(state, overlay, { ...overlay.step, input: '' });
      if (!state.filtering) return state;
      return { ...state, filter: '', cursor: 0 };
    }
    case 'backspace': {
      if (overlay.kind === 'login') {
        return withStep(state, overlay, { ...overlay.step, input: overlay.step.input.slice(0, -1) });
      }
      if (!state.filtering) return state;
      return { ...state, filter: state.filter.slice(0, -1), cursor: 0 };
    }
    case 'accept':
      if (overlay.kind === 'login') return acceptLogin(state, overlay);
      if (state.filtering) return { ...state, filtering: false };
      return state;
    case 'back':
      if (overlay.kind === 'help') return { ...state, overlay: overlay.back ?? { kind: 'none' } };
      if (overlay.kind === 'log' && overlay.detail) return { ...state, overlay: { ...overlay, detail: undefined } };
      if (overlay.kind !== 'none') {
        return { ...state, overlay: { kind: 'none' }, notice: undefined };
      }
      if (state.filtering || state.filter !== '') return { ...state, filtering: false, filter: '', cursor: 0 };
      return state;
    case 'request':
      if (overlay.kind !== 'none' || state.status !== 'ready') return state;
      return startRequest({ ...state, filtering: false }, action.purpose);
    case 'open-doctor': {
      const db = selectedDatabase(state);
      if (overlay.kind !== 'none' || state.status !== 'ready' || !db || (state.pending && state.pending.kind !== 'load')) return state;
      return { ...state, filtering: false, overlay: { kind: 'doctor', name: db.name }, notice: undefined };
    }
    case 'help':
      if (overlay.kind === 'help') return { ...state, overlay: overlay.back ?? { kind: 'none' } };
      return { ...state, filtering: false, overlay: overlay.kind === 'none' ? { kind: 'help' } : { kind: 'help', back: overlay } };
    case 'open-log':
      if (overlay.kind !== 'none') return state;
      return { ...state, filtering: false, overlay: { kind: 'log', selected: undefined, detail: undefined } };
    case 'open-pools':
      if (overlay.kind !== 'none' && overlay.kind !== 'tunnel') return state;
      if (state.pools.length === 0) {
        return { ...state, notice: state.tunnels.length === 0 ? 'No pools: open a tunnel (t) to a database with `pool:` in azdb.yaml.' : 'No pools: none of the open tunnels is to a database with `pool:` in azdb.yaml.' };
      }
      return { ...state, filtering: false, overlay: { kind: 'pools' }, notice: undefined };
    case 'pools':
      return samePools(state.pools, action.pools) ? state : { ...state, pools: action.pools };
    case 'open-detail': {
      if (overlay.kind !== 'log' || overlay.detail) return state;
      const line = state.log[selectedLogIndex(state.log, overlay.selected)];
      return line ? { ...state, overlay: { ...overlay, selected: line.id, detail: logLineDetail(line) } } : state;
    }
    case 'scroll-detail': {
      if (overlay.kind !== 'log' || !overlay.detail) return state;
      const detail = scrollDetail(overlay.detail, action.delta, detailViewport(state.columns, mainHeight(state)));
      return detail === overlay.detail ? state : { ...state, overlay: { ...overlay, detail } };
    }
    case 'show-tunnels': {
      if (state.tunnels.length === 0) return { ...state, notice: 'No open tunnels: press t on a database to open one.' };
      if (overlay.kind === 'tunnel') {
        const index = state.tunnels.findIndex((t) => t.id === overlay.tunnelId);
        const next = state.tunnels[(index + 1) % state.tunnels.length]!;
        return { ...state, overlay: { kind: 'tunnel', tunnelId: next.id, showPassword: false } };
      }
      if (overlay.kind !== 'none') return state;
      return { ...state, overlay: { kind: 'tunnel', tunnelId: state.tunnels[0]!.id, showPassword: false } };
    }
    case 'toggle-password':
      if (overlay.kind !== 'tunnel') return state;
      return { ...state, overlay: { ...overlay, showPassword: !overlay.showPassword } };
    case 'copy-uri': {
      // Not held up by the reload that follows opening a tunnel: c right away copies too.
      const reload = state.pending?.kind === 'load';
      if (overlay.kind !== 'tunnel' || (state.pending && !reload)) return state;
      const tunnel = state.tunnels.find((t) => t.id === overlay.tunnelId);
      if (!tunnel) return state;
      return { ...state, pending: { kind: 'copy', text: uriWithPassword(tunnel), what: `URI of ${tunnel.name} (with password)`, ...(reload ? { reload } : {}) } };
    }
    case 'copied': {
      // OSC 52 cannot tell whether the terminal took it: say what was sent, how to enable it, and
      // show the password so the text can be selected by hand.
      const shown = overlay.kind === 'tunnel' ? { overlay: { ...overlay, showPassword: true } } : {};
      return {
        ...state,
        ...shown,
        pending: state.pending?.kind === 'copy' && state.pending.reload ? { kind: 'load' } : undefined,
        // One line at 80 columns: what was sent, and the usual reason nothing arrives.
        notice: `${action.what} sent via OSC 52; empty clipboard? tmux: set -g set-clipboard on`,
      };
    }
    case 'close-tunnel': {
      if (overlay.kind !== 'tunnel' || state.pending) return state;
      const tunnel = state.tunnels.find((t) => t.id === overlay.tunnelId);
      if (tunnel && tunnel.sessions > 0 && !action.confirmed) {
        const question = `Close the tunnel to ${tunnel.name}? ${sessionsPhrase(tunnel.sessions)} through it will end. y/n`;
        return { ...state, overlay: { kind: 'confirm', question, then: { type: 'close-tunnel', confirmed: true }, back: overlay } };
      }
      return { ...state, overlay: { kind: 'none' }, pending: { kind: 'close-tunnel', id: overlay.tunnelId }, busy: `Closing the tunnel to ${tunnel?.name ?? '…'}…` };
    }
    case 'retry':
      if (overlay.kind !== 'error' || !overlay.retry) return state;
      return {
        ...state,
        overlay: { kind: 'none' },
        status: overlay.retry.kind === 'load' ? 'loading' : state.status,
        pending: overlay.retry,
        busy: overlay.retry.kind === 'load' ? 'Loading databases…' : 'Retrying…',
      };
    case 'reload':
      if (state.pending || overlay.kind !== 'none') return state;
      return { ...state, pending: { kind: 'load' }, busy: 'Loading databases…', notice: undefined };
    case 'quit': {
      const sessions = state.tunnels.reduce((sum, t) => sum + t.sessions, 0);
      if (sessions > 0 && !action.confirmed) {
        const tunnels = state.tunnels.filter((t) => t.sessions > 0).length;
        const question = `Quit? ${sessionsPhrase(sessions)} through ${tunnels} tunnel${tunnels === 1 ? '' : 's'} will end. y/n (ctrl+c again quits)`;
        return { ...state, overlay: { kind: 'confirm', question, then: { type: 'quit', confirmed: true }, back: overlay.kind === 'confirm' ? overlay.back : overlay } };
      }
      return { ...state, overlay: { kind: 'none' }, pending: { kind: 'quit' }, busy: state.tunnels.length > 0 ? 'Closing tunnels…' : 'Quitting…' };
    }
    case 'confirm-yes':
      return overlay.kind === 'confirm' ? pickerReducer({ ...state, overlay: overlay.back }, overlay.then) : state;
    case 'confirm-no':
      return overlay.kind === 'confirm' ? { ...state, overlay: overlay.back } : state;
    case 'tunnel-opened': {
      const row: TunnelRow = { ...action.tunnel, sessions: 0 };
      return {
        ...state,
        busy: undefined,
        tunnels: [...state.tunnels.filter((t) => t.id !== row.id), row],
        overlay: { kind: 'tunnel', tunnelId: row.id, showPassword: false },
        // Reload in the background: the recent list has this login now.
        pending: { kind: 'load' },
      };
    }
    case 'tunnel-close-done':
      return { ...state, pending: undefined, busy: undefined };
    case 'client-ready':
      return state.pending?.kind === 'connect' ? { ...state, pending: { ...state.pending, kind: 'launch' }, busy: undefined } : state;
    case 'cancel': {
      const pending = state.pending;
      if (pending?.kind !== 'connect' && pending?.kind !== 'open-tunnel') return state;
      return { ...state, pending: undefined, busy: undefined, notice: `Cancelled ${pending.kind === 'connect' ? 'connecting' : 'opening a tunnel'} to ${pending.name}.` };
    }
    case 'core-events':
      return action.events.reduce(applyEvent, state);
    case 'names-listed':
    case 'names-failed': {
      if (overlay.kind !== 'login' || overlay.name !== action.name || (overlay.dbUser ?? '') !== action.dbUser || overlay.step.listing?.state !== 'loading') return state;
      const step = overlay.step;
      if (action.type === 'names-failed') return withStep(state, overlay, { ...step, listing: { state: 'failed', message: action.error.message } });
      // Added after the suggestions already shown: the one under the cursor stays where it is.
      return withStep(state, overlay, { ...step, choices: unique([...step.choices, ...action.names]), listing: { state: 'listed', count: action.names.length } });
    }
    case 'client-exited':
      return {
        ...state,
        busy: undefined,
        overlay: { kind: 'none' },
        // Earlier log lines are already on the terminal above the client's output.
        logBase: state.log.length,
        pending: { kind: 'load' },
        notice: `${action.client} for ${action.name} exited${action.exitCode === 0 ? '' : ` with code ${action.exitCode}`}.`,
      };
    case 'client-failed':
      return {
        ...state,
        pending: undefined,
        busy: undefined,
        logBase: state.log.length,
        overlay: { kind: 'error', title: 'Could not connect', error: action.error },
      };
  }
}

function applyEvent(state: PickerState, event: CoreEvent): PickerState {
  if (event.seq <= state.lastSeq) return state;
  const next: PickerState = { ...state, lastSeq: event.seq };
  const line = logLine(event);
  const withLog = line ? { ...next, log: [...next.log, line] } : next;
  switch (event.type) {
    case 'session.opened':
      return { ...withLog, tunnels: withLog.tunnels.map((t) => (t.id === event.tunnelId ? { ...t, sessions: t.sessions + 1 } : t)) };
    case 'session.closed':
      return { ...withLog, tunnels: withLog.tunnels.map((t) => (t.id === event.tunnelId ? { ...t, sessions: Math.max(0, t.sessions - 1) } : t)) };
    case 'tunnel.closed': {
      const overlay = withLog.overlay.kind === 'tunnel' && withLog.overlay.tunnelId === event.tunnelId ? { kind: 'none' as const } : withLog.overlay;
      const closed = withLog.tunnels.some((t) => t.id === event.tunnelId);
      return {
        ...withLog,
        overlay,
        tunnels: withLog.tunnels.filter((t) => t.id !== event.tunnelId),
        ...(closed ? { notice: `Tunnel to ${event.name} closed${event.by === 'logout' ? ' by `azdb db logout`' : ''}.` } : {}),
      };
    }
    default:
      return withLog;
  }
}

/** The index in `log` of the line with id `selected` (the newest when undefined or gone). */
export function selectedLogIndex(log: readonly LogLine[], selected: number | undefined): number {
  const index = selected === undefined ? -1 : log.findIndex((line) => line.id === selected);
  return index >= 0 ? index : log.length - 1;
}

/** A broker log line whole. */
export function logLineDetail(line: LogLine): Detail {
  return openDetail(`Broker log, ${line.time}${line.level === 'info' ? '' : ` (${line.level})`}`, line.text);
}

/** The broker log line of a core event (never a secret: events carry none). */
export function logLine(event: CoreEvent): LogLine | undefined {
  const time = event.at.slice(11, 19);
  const base = { id: event.seq, time };
  switch (event.type) {
    case 'tunnel.opened':
      return { ...base, level: 'info', text: `${event.name}: ${event.purpose === 'client' ? 'client tunnel' : 'tunnel'} ${event.tunnelId} listening on ${event.host}:${event.port}` };
    case 'tunnel.closed':
      return { ...base, level: 'info', text: `${event.name}: tunnel ${event.tunnelId} closed${event.by === 'logout' ? ' by azdb db logout' : ''}` };
    case 'session.opened':
      return { ...base, level: 'info', text: `${event.name}: session ${event.sessionId} opened as ${event.dbUser}${event.dbName ? `/${event.dbName}` : ''} from ${event.client}` };
    case 'session.closed':
      return event.result === 'ok'
        ? { ...base, level: 'info', text: `${event.name}: session ${event.sessionId} closed` }
        : { ...base, level: 'error', text: `${event.name}: session ${event.sessionId} failed: ${event.error ?? 'error'}` };
    case 'cancel':
      return { ...base, level: 'info', text: `${event.name}: cancel request ${event.forwarded ? 'forwarded to the server' : 'not matched'}` };
    case 'client.exited':
      return undefined;
    case 'notice':
      return { ...base, level: event.level, text: event.message };
  }
}

/** Rows the pools overlay takes: its title, and per pool a heading and two lines a key (one when it has none). */
export function poolLines(pools: readonly TuiPool[]): number {
  return 1 + pools.reduce((sum, pool) => sum + 1 + Math.max(1, pool.keys.length * 2), 0);
}

function samePools(a: readonly TuiPool[], b: readonly TuiPool[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * An identity short enough for a row: `oid:2f9c41d0…@72f988bf…`. Each id keeps its first 8
 * characters, which tell identities apart at a glance; `azdb pools` prints them whole.
 */
export function shortIdentity(identity: string): string {
  return identity.replace(/[^:@]{13,}/g, (id) => `${id.slice(0, 8)}…`);
}

/** `1 open session` / `3 open sessions`. */
function sessionsPhrase(count: number): string {
  return `${count} open session${count === 1 ? '' : 's'}`;
}
