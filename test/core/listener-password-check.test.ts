/**
 * `azdb config check`'s look at listeners' password files: weak or world-readable is an error at
 * the listener's line, missing (the secret is mounted only where serve runs) or group-readable a
 * warning, a good file nothing; never the password in a message.
 */
import { describe, expect, it } from 'vitest';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { listenerPasswordFileIssues } from '../../src/core/listener-password-check.js';

const dir = await mkdtemp(join(tmpdir(), 'azdb-listener-pw-'));

async function file(name: string, text: string, mode: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  await chmod(path, mode);
  return path;
}

function configWith(files: string[]) {
  const yaml = [
    'databases:',
    '  - {name: orders, protocol: postgres, uri: "orders.postgres.database.azure.com:5432"}',
    'broker:',
    '  listeners:',
    ...files.map((f, i) => `    - {database: orders, host: 127.0.0.1, port: ${15000 + i}, password_file: ${f}}`),
  ].join('\n');
  return parseConfig(yaml, 'azdb.yaml');
}

describe('listenerPasswordFileIssues', () => {
  it('reports each listener file at its line: weak and world-readable as errors, missing and group-readable as warnings', async () => {
    const good = await file('good', 'a-strong-listener-password\n', 0o600);
    const weak = await file('weak', 'a\n', 0o600);
    const open = await file('open', 'a-strong-listener-password\n', 0o644);
    const group = await file('group', 'a-strong-listener-password\n', 0o640);
    const missing = join(dir, 'missing');
    const { errors, warnings } = await listenerPasswordFileIssues(configWith([good, weak, open, group, missing]));
    expect(errors.map((e) => [e.path, e.line])).toEqual([
      ['broker.listeners[1].password_file', 6],
      ['broker.listeners[2].password_file', 7],
    ]);
    expect(errors[0]!.message).toContain(`password_file of listener orders@127.0.0.1:15001 holds a weak password (1 characters, 1 different): ${weak}; Use at least 16`);
    expect(errors[1]!.message).toContain('accessible to every user (mode 0644)');
    expect(warnings.map((w) => w.path)).toEqual(['broker.listeners[3].password_file', 'broker.listeners[4].password_file']);
    expect(warnings[1]!.message).toContain(`cannot read password_file of listener orders@127.0.0.1:15004: ENOENT ${missing}`);
    expect(JSON.stringify({ errors, warnings })).not.toContain('a-strong-listener-password');
  });
});
