/**
 * Which azdb processes hold tunnels, so `azdb db logout` in another shell can close them. One
 * small JSON file per process in `<state>/tunnels/`; no secrets in it (tokens live only in the
 * memory of the process that holds the tunnel).
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive } from '../process/alive.js';

export interface TunnelRecord {
  pid: number;
  name: string;
  host: string;
  port: number;
  started: string;
  /** The holder's control socket (src/core/tunnel-control.ts); absent when it has none. */
  control?: string;
}

const folder = (stateDir: string) => join(stateDir, 'tunnels');

export async function writeTunnelRecord(stateDir: string, record: TunnelRecord): Promise<() => Promise<void>> {
  await mkdir(folder(stateDir), { recursive: true, mode: 0o700 });
  const file = join(folder(stateDir), `${record.pid}-${record.port}.json`);
  await writeFile(file, JSON.stringify(record), { mode: 0o600 });
  return () => rm(file, { force: true });
}

/** Records of live processes; records of dead ones are removed on the way. */
export async function listTunnelRecords(stateDir: string): Promise<TunnelRecord[]> {
  let files: string[];
  try {
    files = await readdir(folder(stateDir));
  } catch {
    return [];
  }
  const records: TunnelRecord[] = [];
  for (const name of files.filter((f) => f.endsWith('.json'))) {
    const file = join(folder(stateDir), name);
    try {
      const record = JSON.parse(await readFile(file, 'utf8')) as TunnelRecord;
      if (Number.isInteger(record.pid) && isAlive(record.pid)) records.push(record);
      else await rm(file, { force: true });
    } catch {
      await rm(file, { force: true });
    }
  }
  return records;
}
