/**
 * The real MariaDB the MySQL emulator runs on, started the way `azdb demo` starts it: a private
 * data folder reused across starts, a Unix socket as its only listener, a clean stop, and a
 * server left behind by a killed run stopped rather than fought over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { startRealMariaDb } from '../../src/emulator/real-mariadb.js';
import { findTool } from '../harness/tools.js';
import { isAlive } from '../../src/process/alive.js';

const mariadbd = await findTool('mariadbd');

let root: string;

describe.skipIf(mariadbd.skip)('a real MariaDB for the emulator', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'azdb-test-mariadb-'));
    await chmod(root, 0o755); // as root, mariadbd runs as `mysql` and must enter it
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps its data across starts, listens on its socket only, and stops cleanly', async () => {
    const dir = join(root, 'reuse');
    const first = await startRealMariaDb({ dir });
    const pid = Number(await readFile(join(dir, 'run', 'mariadbd.pid'), 'utf8'));
    try {
      const [settings] = await first.query<RowDataPacket[]>('select @@skip_networking as skip, @@socket as socket');
      expect(settings).toEqual({ skip: 1, socket: first.socketPath });
      await first.query('create database kept; create table kept.t (v int); insert into kept.t values (42)');
    } finally {
      await first.stop();
    }
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(join(dir, 'run', 'mariadbd.pid'))).toBe(false);

    const second = await startRealMariaDb({ dir });
    try {
      expect(await second.query<RowDataPacket[]>('select v from kept.t')).toEqual([{ v: 42 }]);
    } finally {
      await second.stop();
    }
  });

  it('stops a server a killed run left on its data folder, then starts', async () => {
    const dir = join(root, 'orphan');
    const abandoned = await startRealMariaDb({ dir });
    const orphanPid = Number(await readFile(join(dir, 'run', 'mariadbd.pid'), 'utf8'));
    const next = await startRealMariaDb({ dir });
    try {
      expect(isAlive(orphanPid)).toBe(false);
      expect(await next.query<RowDataPacket[]>('select 1 as one')).toEqual([{ one: 1 }]);
    } finally {
      await next.stop();
      await abandoned.stop();
    }
  });

  it.skipIf(process.getuid?.() !== 0)('names the folder the `mysql` user cannot enter, and what to run', async () => {
    const closed = join(root, 'closed');
    await (await import('node:fs/promises')).mkdir(closed, { mode: 0o700 });
    await chmod(closed, 0o700);
    await expect(startRealMariaDb({ dir: join(closed, 'mariadb') })).rejects.toMatchObject({
      message: `MariaDB runs as the \`mysql\` user, which cannot enter ${closed} (mode 700)`,
      hint: `Run \`chmod o+x ${closed}\`, or point AZDB_STATE_DIR at a folder others may enter.`,
    });
  });
});
