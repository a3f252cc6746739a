import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa as loadOrCreateNamedCa, type IssuedCertificate, type LocalCa } from '../../src/broker/local-ca.js';

const loadOrCreateCa = (folder: string) => loadOrCreateNamedCa(folder, { name: 'CN=azdb test CA, O=azdb' });

let dir: string;
let ca: LocalCa;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-ca-'));
  ca = await loadOrCreateCa(dir);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts a TLS server with `cert`, connects once with `options`, reports the outcome. */
async function handshake(
  cert: IssuedCertificate,
  options: tls.ConnectionOptions,
): Promise<{ ok: true } | { ok: false; code: string | undefined }> {
  const { ok, code } = await handshakeWithReason(cert, options);
  return ok ? { ok } : { ok, code };
}

async function handshakeWithReason(cert: IssuedCertificate, options: tls.ConnectionOptions): Promise<{ ok: boolean; code?: string | undefined; reason?: string }> {
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (socket) => socket.end());
  server.on('tlsClientError', () => {}); // the client hanging up on a bad certificate
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const socket = tls.connect({ host: '127.0.0.1', port, ...options });
  try {
    await once(socket, 'secureConnect');
    return { ok: true };
  } catch (error) {
    return { ok: false, code: (error as NodeJS.ErrnoException).code, reason: (error as Error).message };
  } finally {
    socket.destroy();
    server.close();
  }
}

describe('local CA', () => {
  it('issues a server certificate that verifies against the CA for its DNS name', async () => {
    const cert = await ca.issueServerCertificate({ dnsNames: ['orders.postgres.database.azure.com'] });
    await expect(handshake(cert, { ca: ca.caPem, servername: 'orders.postgres.database.azure.com' })).resolves.toEqual({
      ok: true,
    });
  });

  it('verifies an IP address SAN when connecting by IP', async () => {
    const cert = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    await expect(handshake(cert, { ca: ca.caPem })).resolves.toEqual({ ok: true });
  });

  it('fails hostname verification for a name not in the SAN', async () => {
    const cert = await ca.issueServerCertificate({ dnsNames: ['orders.postgres.database.azure.com'] });
    await expect(handshake(cert, { ca: ca.caPem, servername: 'other.postgres.database.azure.com' })).resolves.toEqual({
      ok: false,
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('fails for an expired certificate', async () => {
    const day = 86_400_000;
    const cert = await ca.issueServerCertificate({
      dnsNames: ['expired.test'],
      notBefore: new Date(Date.now() - 10 * day),
      notAfter: new Date(Date.now() - day),
    });
    await expect(handshake(cert, { ca: ca.caPem, servername: 'expired.test' })).resolves.toEqual({
      ok: false,
      code: 'CERT_HAS_EXPIRED',
    });
  });

  it('is not trusted without the CA', async () => {
    const cert = await ca.issueServerCertificate({ dnsNames: ['untrusted.test'] });
    const result = await handshake(cert, { servername: 'untrusted.test' });
    expect(result.ok).toBe(false);
  });

  it('certificates from another CA do not verify against this one', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'azdb-ca-other-'));
    try {
      const other = await loadOrCreateCa(otherDir);
      expect(other.caPem).not.toBe(ca.caPem);
      const cert = await other.issueServerCertificate({ dnsNames: ['x.test'] });
      await expect(handshake(cert, { ca: ca.caPem, servername: 'x.test' })).resolves.toMatchObject({ ok: false });
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('persists the CA with a private key file of mode 0600 and reuses it', async () => {
    expect((await stat(join(dir, 'ca-key.pem'))).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateCa(dir);
    expect(again.caPem).toBe(ca.caPem);
    expect(again.caFile).toBe(join(dir, 'ca.pem'));
    // A certificate issued by the reloaded CA verifies against the original PEM.
    const cert = await again.issueServerCertificate({ dnsNames: ['reload.test'] });
    await expect(handshake(cert, { ca: ca.caPem, servername: 'reload.test' })).resolves.toEqual({ ok: true });
  });

  it('replaces a corrupt CA', async () => {
    const brokenDir = await mkdtemp(join(tmpdir(), 'azdb-ca-broken-'));
    try {
      await writeFile(join(brokenDir, 'ca.pem'), 'not a certificate');
      await writeFile(join(brokenDir, 'ca-key.pem'), 'not a key');
      const fresh = await loadOrCreateCa(brokenDir);
      expect(fresh.caPem).toContain('BEGIN CERTIFICATE');
      const cert = await fresh.issueServerCertificate({ dnsNames: ['fresh.test'] });
      await expect(handshake(cert, { ca: fresh.caPem, servername: 'fresh.test' })).resolves.toEqual({ ok: true });
    } finally {
      await rm(brokenDir, { recursive: true, force: true });
    }
  });

  it('gives one CA to concurrent creators', async () => {
    const raceDir = await mkdtemp(join(tmpdir(), 'azdb-ca-race-'));
    try {
      const cas = await Promise.all([loadOrCreateCa(raceDir), loadOrCreateCa(raceDir), loadOrCreateCa(raceDir)]);
      const reloaded = await loadOrCreateCa(raceDir);
      // Each creator got the pair that is on disk in the end, whoever wrote it.
      for (const each of cas) {
        expect(each.caPem).toBe(reloaded.caPem);
        const cert = await each.issueServerCertificate({ dnsNames: ['race.test'] });
        await expect(handshake(cert, { ca: reloaded.caPem, servername: 'race.test' })).resolves.toEqual({ ok: true });
      }
    } finally {
      await rm(raceDir, { recursive: true, force: true });
    }
  });

  it('vouches only for the names a constrained CA permits', async () => {
    const constrainedDir = await mkdtemp(join(tmpdir(), 'azdb-ca-constrained-'));
    try {
      const constrained = await loadOrCreateNamedCa(constrainedDir, { name: 'CN=azdb constrained test CA', permitted: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] } });
      const local = await constrained.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      await expect(handshake(local, { ca: constrained.caPem })).resolves.toEqual({ ok: true });
      await expect(handshake(local, { ca: constrained.caPem, servername: 'localhost' })).resolves.toEqual({ ok: true });
      // Its key could sign for another host, but no client following RFC 5280 believes it.
      const elsewhere = await constrained.issueServerCertificate({ dnsNames: ['bank.example'], ipAddresses: ['127.0.0.1'] });
      // (Node has no code for OpenSSL's error 47.)
      await expect(handshakeWithReason(elsewhere, { ca: constrained.caPem, servername: 'bank.example' })).resolves.toMatchObject({ ok: false, reason: 'permitted subtree violation' });
      const otherIp = await constrained.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['10.0.0.1'] });
      await expect(handshakeWithReason(otherIp, { ca: constrained.caPem, servername: 'localhost' })).resolves.toMatchObject({ ok: false, reason: 'permitted subtree violation' });
    } finally {
      await rm(constrainedDir, { recursive: true, force: true });
    }
  });
});
