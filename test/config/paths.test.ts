import { describe, expect, it } from 'vitest';
import { resolveConfigPath, resolveStateDir } from '../../src/config/paths.js';

const HOME = '/home/ada';

describe('resolveConfigPath', () => {
  it('prefers --config, then AZDB_CONFIG, then XDG_CONFIG_HOME, then ~/.config', () => {
    const env = { AZDB_CONFIG: '/etc/azdb/env.yaml', XDG_CONFIG_HOME: '/xdg' };
    expect(resolveConfigPath({ flag: './flag.yaml', env, homedir: HOME })).toBe('./flag.yaml');
    expect(resolveConfigPath({ env, homedir: HOME })).toBe('/etc/azdb/env.yaml');
    expect(resolveConfigPath({ env: { XDG_CONFIG_HOME: '/xdg' }, homedir: HOME })).toBe('/xdg/azdb/azdb.yaml');
    expect(resolveConfigPath({ env: {}, homedir: HOME })).toBe('/home/ada/.config/azdb/azdb.yaml');
  });

  it('treats empty values as unset and ignores a relative XDG_CONFIG_HOME', () => {
    expect(resolveConfigPath({ flag: '', env: { AZDB_CONFIG: '' }, homedir: HOME })).toBe('/home/ada/.config/azdb/azdb.yaml');
    expect(resolveConfigPath({ env: { XDG_CONFIG_HOME: 'relative/dir' }, homedir: HOME })).toBe(
      '/home/ada/.config/azdb/azdb.yaml',
    );
  });

  it('expands a leading ~ that the shell left alone', () => {
    expect(resolveConfigPath({ env: { AZDB_CONFIG: '~/cfg/azdb.yaml' }, homedir: HOME })).toBe('/home/ada/cfg/azdb.yaml');
    expect(resolveConfigPath({ flag: '~/x.yaml', env: {}, homedir: HOME })).toBe('/home/ada/x.yaml');
    expect(resolveConfigPath({ flag: '~other/x.yaml', env: {}, homedir: HOME })).toBe('~other/x.yaml');
  });
});

describe('resolveStateDir', () => {
  it('prefers AZDB_STATE_DIR, even for root', () => {
    expect(resolveStateDir({ AZDB_STATE_DIR: '/tmp/s', XDG_STATE_HOME: '/xdg' }, HOME, 0)).toBe('/tmp/s');
  });

  it('uses /var/lib/azdb for root', () => {
    expect(resolveStateDir({ XDG_STATE_HOME: '/xdg' }, '/root', 0)).toBe('/var/lib/azdb');
  });

  it('uses XDG_STATE_HOME, else ~/.local/state, for other users', () => {
    expect(resolveStateDir({ XDG_STATE_HOME: '/xdg' }, HOME, 1000)).toBe('/xdg/azdb');
    expect(resolveStateDir({ XDG_STATE_HOME: 'rel' }, HOME, 1000)).toBe('/home/ada/.local/state/azdb');
    expect(resolveStateDir({}, HOME, 1000)).toBe('/home/ada/.local/state/azdb');
    // No uid (Windows) is not root.
    expect(resolveStateDir({}, HOME, undefined)).toBe('/home/ada/.local/state/azdb');
  });
});
