/** The demo's address book: ports and the identity header kept across starts, a taken port replaced. */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAddressBook } from '../../src/emulator/address-book.js';

let dir = '';
const servers: Server[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-address-book-'));
});
afterAll(async () => {
  for (const server of servers) server.close();
  await rm(dir, { recursive: true, force: true });
});

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      servers.push(server);
      resolve(server);
    });
  });
}
const portOf = (server: Server) => (server.address() as AddressInfo).port;

describe('the address book', () => {
  it('gives the next start the same port and header, and a free port when the old one is taken', async () => {
    const file = join(dir, 'addresses.json');
    const first = await loadAddressBook(file);
    const a = await first.onStablePort('a', listenOn, portOf);
    await first.save();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const port = portOf(a);
    a.close();
    await new Promise((resolve) => a.once('close', resolve));

    const second = await loadAddressBook(file);
    expect(second.identityHeader).toBe(first.identityHeader);
    const again = await second.onStablePort('a', listenOn, portOf);
    expect(portOf(again)).toBe(port);
    // `again` still holds the port: a third start gets another one and remembers that.
    const third = await loadAddressBook(file);
    const moved = await third.onStablePort('a', listenOn, portOf);
    expect(portOf(moved)).not.toBe(port);
    await third.save();
    expect(JSON.parse(await (await import('node:fs/promises')).readFile(file, 'utf8')).ports.a).toBe(portOf(moved));
  });
});
