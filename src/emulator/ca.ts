/**
 * A local certificate authority for the emulated Azure endpoints (ARM, the database front).
 *
 * The CA certificate and key are persisted as `ca.pem` and `ca-key.pem` (mode 0600; the key
 * followed by the CA certificate) so every process of a test run, and every `azdb demo`, trusts
 * the same root. Server certificates are ECDSA P-256 with subjectAltName and the serverAuth EKU,
 * like a public CA would issue, so Node's `tls` verification (hostname included) runs unchanged
 * against them.
 */
import { X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import 'reflect-metadata'; // before @peculiar/x509: its tsyringe refuses to load without Reflect.getMetadata
import * as x509 from '@peculiar/x509';
import { BugError, ExternalError } from '../errors.js';
import { createExclusively, ensureFileContent, readTextIfExists, removeIfUnchanged } from './persist.js';

export interface ServerCertificateRequest {
  dnsNames: string[];
  ipAddresses?: string[];
  /** Defaults to one hour ago (clock skew). */
  notBefore?: Date;
  /** Defaults to 90 days from now. */
  notAfter?: Date;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export interface LocalCa {
  /** The CA certificate, for `tls.connect({ ca })` and `ca_file`. */
  readonly caPem: string;
  /** Where `ca.pem` lives, for tools that want a file. */
  readonly caFile: string;
  issueServerCertificate(request: ServerCertificateRequest): Promise<IssuedCertificate>;
}

const CA_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca-key.pem';
const CA_NAME = 'CN=azdb emulator local CA, O=azdb';
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** A CA closer than this to its expiry is replaced rather than reused. */
const CA_MIN_REMAINING_MS = 30 * DAY_MS;
const MAX_CREATE_ATTEMPTS = 5;

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto implements it.
type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
const crypto = webcrypto as unknown as X509Crypto;

/** Loads the CA persisted in `dir`, or creates (and persists) a new one. */
export async function loadOrCreateCa(dir: string): Promise<LocalCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, CA_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  // Several test processes may race to create the CA. `ca-key.pem` carries the key and, after
  // it, the CA certificate (a haproxy-style bundle), and it is created with an exclusive link, so
  // every process ends up with the one pair that won; `ca.pem` is derived from it.
  for (let attempt = 0; attempt < MAX_CREATE_ATTEMPTS; attempt++) {
    const bundle = await readTextIfExists(keyPath);
    if (bundle !== undefined) {
      const material = validMaterial(bundle);
      if (material) {
        await chmod(keyPath, 0o600);
        await ensureFileContent(certPath, material.certPem, 0o644);
        return makeCa(material, certPath);
      }
      await removeIfUnchanged(keyPath, bundle); // corrupt or expiring: replace it
    }
    const created = await createCaMaterial();
    await createExclusively(keyPath, created.keyPem + created.certPem, 0o600);
  }
  throw new ExternalError(`could not create a consistent local CA in ${dir}`);
}

interface CaMaterial {
  certPem: string;
  keyPem: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----\n?/g;

function validMaterial(bundle: string): CaMaterial | undefined {
  const blocks = [...bundle.matchAll(PEM_BLOCK)];
  const keyPem = blocks.find((block) => block[1] === 'PRIVATE KEY')?.[0];
  const certPem = blocks.find((block) => block[1] === 'CERTIFICATE')?.[0];
  if (keyPem === undefined || certPem === undefined) return undefined;
  try {
    const cert = new NodeX509Certificate(certPem);
    const now = Date.now();
    const usable =
      cert.ca &&
      cert.checkPrivateKey(createPrivateKey(keyPem)) &&
      Date.parse(cert.validFrom) <= now &&
      Date.parse(cert.validTo) - now > CA_MIN_REMAINING_MS;
    return usable ? { certPem: withNewline(certPem), keyPem: withNewline(keyPem) } : undefined;
  } catch {
    return undefined;
  }
}

async function createCaMaterial(): Promise<CaMaterial> {
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: CA_NAME,
      notBefore: new Date(now - HOUR_MS),
      notAfter: new Date(now + 10 * 365 * DAY_MS),
      signingAlgorithm: SIGNING,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKeyPem(keys.privateKey) };
}

async function makeCa(material: CaMaterial, caFile: string): Promise<LocalCa> {
  const caCert = new x509.X509Certificate(material.certPem);
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    createPrivateKey(material.keyPem).export({ type: 'pkcs8', format: 'der' }),
    EC_KEY,
    false,
    ['sign'],
  );
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto);

  return {
    caPem: material.certPem,
    caFile,
    async issueServerCertificate(request) {
      const names: x509.JsonGeneralNames = [
        ...request.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const commonName = names[0]?.value;
      if (commonName === undefined) throw new BugError('a server certificate needs at least one DNS name or IP address');
      const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
      const now = Date.now();
      const cert = await x509.X509CertificateGenerator.create(
        {
          serialNumber: randomSerial(),
          subject: `CN=${commonName}`,
          issuer: caCert.subject,
          notBefore: request.notBefore ?? new Date(now - HOUR_MS),
          notAfter: request.notAfter ?? new Date(now + 90 * DAY_MS),
          signingAlgorithm: SIGNING,
          publicKey: keys.publicKey,
          signingKey: signingKey,
          extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
            new x509.SubjectAlternativeNameExtension(names),
            await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
            authorityKeyId,
          ],
        },
        crypto,
      );
      return { certPem: cert.toString('pem') + '\n', keyPem: await exportKeyPem(keys.privateKey) };
    },
  };
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

/** A positive 16-byte serial (high bit clear so DER needs no sign byte). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function withNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}
