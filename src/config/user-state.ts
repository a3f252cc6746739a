/**
 * Per-user state that is not configuration: recent connections and the port of each database's
 * tunnel (for the picker) and wizard progress (so `azdb setup` resumes). Callers see {@link UserStateStore}; conf is one backing,
 * memory another, so units that use the store take it as a defaulted parameter and tests inject
 * {@link createMemoryUserStateStore}.
 */
import { homedir } from 'node:os';
import Conf from 'conf';
import { resolveStateDir } from './paths.js';

export const MAX_RECENT_CONNECTIONS = 20;

export interface RecentConnection {
  /** Database name as in `azdb db ls`. */
  name: string;
  db_user: string;
  /** Empty when none was chosen (MySQL without a default database). */
  db_name: string;
  /** ISO 8601 time of the connection. */
  at: string;
}

export interface WizardProgress {
  step: number;
  completed: string[];
  answers: Record<string, string>;
}

export interface UserStateStore {
  /** Most recent first, at most {@link MAX_RECENT_CONNECTIONS}. */
  recentConnections(): RecentConnection[];
  /** Puts the connection first, dropping an earlier entry for the same name, user and database. */
  recordConnection(connection: Omit<RecentConnection, 'at'> & { at?: string | Date }): void;
  /** The port the picker's tunnels to database `name` listen on (a GUI client is set up with it). */
  tunnelPort(name: string): number | undefined;
  rememberTunnelPort(name: string, port: number): void;
  /** Undefined when the wizard was never started (or was cleared). */
  wizardProgress(): WizardProgress | undefined;
  saveWizardProgress(progress: WizardProgress): void;
  clear(): void;
}

interface StoredState {
  recent?: unknown;
  tunnel_ports?: unknown;
  wizard?: unknown;
}

/** Pure: the recent list after connecting to `entry`. */
export function addRecentConnection(list: readonly RecentConnection[], entry: RecentConnection): RecentConnection[] {
  const same = (other: RecentConnection): boolean =>
    other.name === entry.name && other.db_user === entry.db_user && other.db_name === entry.db_name;
  return [entry, ...list.filter((other) => !same(other))].slice(0, MAX_RECENT_CONNECTIONS);
}

export interface UserStateOptions {
  /** Directory of the state file; default {@link resolveStateDir} (honours `AZDB_STATE_DIR`). */
  cwd?: string;
}

export function createUserStateStore(options: UserStateOptions = {}): UserStateStore {
  const conf = new Conf<StoredState>({
    projectName: 'azdb',
    projectSuffix: '',
    cwd: options.cwd ?? resolveStateDir(process.env, homedir(), process.getuid?.()),
    configName: 'user-state',
    // Losing the recent list beats refusing to start over a corrupt file nobody edits by hand.
    clearInvalidConfig: true,
    accessPropertiesByDotNotation: false,
    configFileMode: 0o600,
  });
  return storeOver({
    read: (key) => conf.get(key),
    write: (key, value) => conf.set(key, value),
    clear: () => conf.clear(),
  });
}

export function createMemoryUserStateStore(
  initial: { recent?: RecentConnection[]; tunnel_ports?: Record<string, number>; wizard?: WizardProgress } = {},
): UserStateStore {
  // JSON round trip, as on disk: callers can never alias the stored objects.
  const state = new Map<keyof StoredState, string>();
  for (const [key, value] of Object.entries(initial) as [keyof StoredState, unknown][]) {
    state.set(key, JSON.stringify(value));
  }
  return storeOver({
    read: (key) => {
      const text = state.get(key);
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    },
    write: (key, value) => state.set(key, JSON.stringify(value)),
    clear: () => state.clear(),
  });
}

interface Backing {
  read(key: keyof StoredState): unknown;
  write(key: keyof StoredState, value: unknown): void;
  clear(): void;
}

function storeOver(backing: Backing): UserStateStore {
  const recent = (): RecentConnection[] => sanitizeRecent(backing.read('recent'));
  const ports = (): Record<string, number> => sanitizePorts(backing.read('tunnel_ports'));
  return {
    recentConnections: recent,
    tunnelPort(name) {
      const known = ports();
      return Object.hasOwn(known, name) ? known[name] : undefined;
    },
    rememberTunnelPort(name, port) {
      backing.write('tunnel_ports', { ...ports(), [name]: port });
    },
    recordConnection(connection) {
      const at = connection.at instanceof Date ? connection.at.toISOString() : (connection.at ?? new Date().toISOString());
      const entry: RecentConnection = {
        name: connection.name,
        db_user: connection.db_user,
        db_name: connection.db_name,
        at,
      };
      backing.write('recent', addRecentConnection(recent(), entry));
    },
    wizardProgress: () => sanitizeWizard(backing.read('wizard')),
    saveWizardProgress(progress) {
      backing.write('wizard', {
        step: progress.step,
        completed: [...progress.completed],
        answers: { ...progress.answers },
      });
    },
    clear: () => backing.clear(),
  };
}

// The state file may be from another version or hand-edited: keep only well-formed entries.
function sanitizeRecent(value: unknown): RecentConnection[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter(
      (item): item is RecentConnection =>
        isRecord(item) &&
        typeof item['name'] === 'string' &&
        typeof item['db_user'] === 'string' &&
        typeof item['db_name'] === 'string' &&
        typeof item['at'] === 'string',
    )
    .map(({ name, db_user, db_name, at }) => ({ name, db_user, db_name, at }))
    .slice(0, MAX_RECENT_CONNECTIONS);
}

function sanitizePorts(value: unknown): Record<string, number> {
  if (!isRecord(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((entry): entry is [string, number] => Number.isInteger(entry[1]) && (entry[1] as number) > 0 && (entry[1] as number) < 65536));
}

function sanitizeWizard(value: unknown): WizardProgress | undefined {
  if (!isRecord(value) || typeof value['step'] !== 'number' || !Number.isInteger(value['step'])) return undefined;
  const completed = Array.isArray(value['completed'])
    ? value['completed'].filter((item): item is string => typeof item === 'string')
    : [];
  const answers = isRecord(value['answers'])
    ? Object.fromEntries(Object.entries(value['answers']).filter((entry): entry is [string, string] => typeof entry[1] === 'string'))
    : {};
  return { step: value['step'], completed, answers };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
