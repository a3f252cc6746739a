/**
 * The local tunnels' certificate: made once in the state folder, private files 0600, verified by
 * real TLS clients for every local name, and reused (not remade) by the next process.
 */
import { once } from 'node:events';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localTls, type LocalTls } from '../../src/broker/local-tls.js';

let root: string;
let state: string;
let local: LocalTls;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'azdb-local-tls-'));
  state = join(root, 'state');
  local = await localTls(state);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A server that starts TLS with `context` as the broker does; one client connection with `options`; the outcome. */
async function handshake(context: tls.SecureContext, options: tls.ConnectionOptions): Promise<{ ok: boolean; reason?: string }> {
  const server = createTcpServer((raw) => {
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    secure.on('error', () => raw.destroy());
    secure.on('secure', () => secure.end());
  });
  const host = options.host ?? '127.0.0.1';
  server.listen(0, host);
  await once(server, 'listening');
  const socket = tls.connect({ ...options, host, port: (server.address() as AddressInfo).port });
  try {
    await once(socket, 'secureConnect');
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  } finally {
    socket.destroy();
    server.close();
  }
}

async function ipv6Loopback(): Promise<boolean> {
  const probe = createTcpServer();
  try {
    probe.listen(0, '::1');
    await once(probe, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    probe.close();
  }
}

describe('local tunnel TLS', () => {
  it('is verified against its CA for 127.0.0.1, localhost and ::1', async () => {
    const ca = await readFile(local.caFile, 'utf8');
    expect(local.caFile).toBe(join(state, 'tls', 'ca.pem'));
    await expect(handshake(local.context, { ca })).resolves.toEqual({ ok: true });
    await expect(handshake(local.context, { ca, servername: 'localhost' })).resolves.toEqual({ ok: true });
    if (await ipv6Loopback()) await expect(handshake(local.context, { ca, host: '::1' })).resolves.toEqual({ ok: true });
    // Not trusted by anyone who was not given the CA, and not for other names.
    expect((await handshake(local.context, {})).ok).toBe(false);
    expect((await handshake(local.context, { ca, servername: 'orders.postgres.database.azure.com' })).ok).toBe(false);
  });

  it('keeps its keys private: 0600 files in a 0700 folder; the CA certificate is for everyone', async () => {
    const mode = async (path: string) => (await stat(path)).mode & 0o777;
    expect(await mode(join(state, 'tls'))).toBe(0o700);
    expect(await mode(join(state, 'tls', 'ca-key.pem'))).toBe(0o600);
    expect(await mode(join(state, 'tls', 'localhost-key.pem'))).toBe(0o600);
    expect(await mode(local.caFile)).toBe(0o644);
  });

  it('is reused by the next process: the same CA and the same server certificate', async () => {
    // Another state folder with the same files is what the next azdb process finds.
    const next = join(root, 'next');
    await cp(state, next, { recursive: true });
    const before = await readFile(join(next, 'tls', 'localhost-key.pem'), 'utf8');
    const reused = await localTls(next);
    expect(await readFile(join(next, 'tls', 'localhost-key.pem'), 'utf8')).toBe(before);
    expect(await readFile(reused.caFile, 'utf8')).toBe(await readFile(local.caFile, 'utf8'));
    await expect(handshake(reused.context, { ca: await readFile(local.caFile, 'utf8') })).resolves.toEqual({ ok: true });
  });

  it('replaces a broken server certificate from the same CA, so clients that trust the CA keep working', async () => {
    const broken = join(root, 'broken');
    await cp(state, broken, { recursive: true });
    await writeFile(join(broken, 'tls', 'localhost-key.pem'), 'not a key\n', { mode: 0o600 });
    const repaired = await localTls(broken);
    expect(await readFile(join(broken, 'tls', 'localhost-key.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    await expect(handshake(repaired.context, { ca: await readFile(local.caFile, 'utf8') })).resolves.toEqual({ ok: true });
  });

  it('gives concurrent first uses one CA', async () => {
    const race = join(root, 'race');
    // Distinct folder spellings defeat the per-process cache, as separate processes would.
    const all = await Promise.all([localTls(race), localTls(`${race}/`), localTls(`${race}/.`)]);
    const ca = await readFile(join(race, 'tls', 'ca.pem'), 'utf8');
    for (const each of all) await expect(handshake(each.context, { ca })).resolves.toEqual({ ok: true });
  });
});
