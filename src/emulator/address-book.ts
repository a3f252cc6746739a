/**
 * The demo's addresses, kept across restarts: the ports of the identity endpoint, ARM and every
 * server front, and the managed identity's header. A config written against one start (by
 * `azdb setup`, or by hand for a GUI client) and a shell that sourced env.sh keep working with
 * the next. The header is a secret, so the file is 0600. A port another program took since is
 * replaced by a free one.
 */
import { randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';

export interface AddressBook {
  readonly identityHeader: string;
  /** Starts something on its remembered port, or on a free one when there is none or it is taken. */
  onStablePort<T>(key: string, start: (port: number) => Promise<T>, portOf: (started: T) => number): Promise<T>;
  save(): Promise<void>;
}

interface Stored {
  identityHeader?: string;
  ports?: Record<string, number>;
}

/** Addresses remembered in `file`. */
export async function loadAddressBook(file: string): Promise<AddressBook> {
  const stored = await readFile(file, 'utf8')
    .then((text) => JSON.parse(text) as Stored)
    .catch((): Stored => ({}));
  const ports: Record<string, number> = { ...(stored.ports ?? {}) };
  const identityHeader = typeof stored.identityHeader === 'string' && stored.identityHeader.length >= 32 ? stored.identityHeader : newHeader();
  return {
    identityHeader,
    async onStablePort(key, start, portOf) {
      const saved = Number.isInteger(ports[key]) ? ports[key]! : 0;
      let started;
      try {
        started = await start(saved);
      } catch (error) {
        if (saved === 0 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
        started = await start(0);
      }
      ports[key] = portOf(started);
      return started;
    },
    async save() {
      await writeFile(file, `${JSON.stringify({ identityHeader, ports }, null, 2)}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
    },
  };
}

/** New addresses on every start (the tests: many emulators at once). */
export function ephemeralAddressBook(): AddressBook {
  return {
    identityHeader: newHeader(),
    onStablePort: (_key, start) => start(0),
    async save() {},
  };
}

function newHeader(): string {
  return randomBytes(24).toString('hex');
}
