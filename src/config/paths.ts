/**
 * Where azdb's files live. Pure: the environment, home directory and uid come in as arguments,
 * so tests and the CLI share one rule.
 */
import { homedir as osHomedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

export interface ConfigPathOptions {
  /** `--config PATH`. */
  flag?: string;
  env?: NodeJS.ProcessEnv;
  homedir?: string;
}

/** `--config`, else `AZDB_CONFIG`, else `$XDG_CONFIG_HOME/azdb/azdb.yaml`, else `~/.config/azdb/azdb.yaml`. */
export function resolveConfigPath(options: ConfigPathOptions = {}): string {
  const env = options.env ?? process.env;
  const home = options.homedir ?? osHomedir();
  const explicit = nonEmpty(options.flag) ?? nonEmpty(env['AZDB_CONFIG']);
  if (explicit !== undefined) return expandHome(explicit, home);
  return join(xdgDir(env['XDG_CONFIG_HOME']) ?? join(home, '.config'), 'azdb', 'azdb.yaml');
}

/**
 * `AZDB_STATE_DIR`, else `/var/lib/azdb` for root (a service), else `$XDG_STATE_HOME/azdb`, else
 * `~/.local/state/azdb`. `uid` is undefined where there are none (Windows).
 */
export function resolveStateDir(env: NodeJS.ProcessEnv, homedir: string, uid: number | undefined): string {
  const explicit = nonEmpty(env['AZDB_STATE_DIR']);
  if (explicit !== undefined) return expandHome(explicit, homedir);
  if (uid === 0) return '/var/lib/azdb';
  return join(xdgDir(env['XDG_STATE_HOME']) ?? join(homedir, '.local', 'state'), 'azdb');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

// The XDG spec says relative values are invalid and must be ignored.
function xdgDir(value: string | undefined): string | undefined {
  const dir = nonEmpty(value);
  return dir !== undefined && isAbsolute(dir) ? dir : undefined;
}

// `AZDB_CONFIG='~/x.yaml'` in quotes reaches us unexpanded; do what the user meant.
function expandHome(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}
