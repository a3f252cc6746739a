/**
 * A certificate authority kept in a folder: the root of azdb's local tunnels (src/broker/local-tls.ts)
 * and of the emulated Azure endpoints (src/emulator/ca.ts).
 *
 * The CA certificate and key are persisted as `ca.pem` and `ca-key.pem` (mode 0600; the key
 * followed by the CA certificate) so every process using the folder trusts the same root. Server
 * certificates are ECDSA P-256 with subjectAltName and the serverAuth EKU, like a public CA would
 * issue, so TLS verification (hostname included) runs unchanged against them. A CA may be limited
 * to some names (X.509 name constraints), so its key cannot vouch for any other host.
 */
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import 'reflect-metadata'; // before @peculiar/x509: its tsyringe refuses to load without Reflect.getMetadata
import * as x509 from '@peculiar/x509';
import { BugError } from '../errors.js';
import { usableKeyAndCertificate } from './pem-bundle.js';
import { ensureFileContent, loadOrCreateFile } from './persist.js';

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

export interface CaOptions {
  /** The CA's distinguished name, e.g. `CN=azdb local tunnel CA, O=azdb`. */
  name: string;
  /** When given, the only names the CA may vouch for (critical name constraints). */
  permitted?: { dnsNames: string[]; ipAddresses: string[] };
}

const CA_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca-key.pem';
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** A CA closer than this to its expiry is replaced rather than reused. */
const CA_MIN_REMAINING_MS = 30 * DAY_MS;

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto implements it.
type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
const crypto = webcrypto as unknown as X509Crypto;

/** Loads the CA persisted in `dir`, or creates (and persists) a new one. */
export async function loadOrCreateCa(dir: string, options: CaOptions): Promise<LocalCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, CA_FILE);
  // Several processes may race to create the CA. `ca-key.pem` carries the key and, after it, the
  // CA certificate (a haproxy-style bundle), and it is created exclusively, so every process ends
  // up with the one pair that won; `ca.pem` is derived from it.
  const material = await loadOrCreateFile(join(dir, CA_KEY_FILE), validMaterial, async () => {
    const created = await createCaMaterial(options);
    return created.keyPem + created.certPem;
  });
  await ensureFileContent(certPath, material.certPem, 0o644);
  return makeCa(material, certPath);
}

interface CaMaterial {
  certPem: string;
  keyPem: string;
}

function validMaterial(bundle: string): CaMaterial | undefined {
  const found = usableKeyAndCertificate(bundle, CA_MIN_REMAINING_MS);
  return found?.cert.ca ? { certPem: found.certPem, keyPem: found.keyPem } : undefined;
}

async function createCaMaterial(options: CaOptions): Promise<CaMaterial> {
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: options.name,
      notBefore: new Date(now - HOUR_MS),
      notAfter: new Date(now + 10 * 365 * DAY_MS),
      signingAlgorithm: SIGNING,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ...(options.permitted ? [nameConstraints(options.permitted)] : []),
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

/**
 * NameConstraints (RFC 5280 4.2.1.10) with permitted subtrees only, DER-encoded by hand (the x509
 * library has no class for it): each DNS name, and each IP address as itself with a full mask.
 */
function nameConstraints(permitted: { dnsNames: string[]; ipAddresses: string[] }): x509.Extension {
  const subtree = (generalName: Buffer) => der(0x30, generalName);
  const subtrees = [
    ...permitted.dnsNames.map((name) => subtree(der(0x82, Buffer.from(name, 'ascii')))),
    ...permitted.ipAddresses.map((address) => {
      const bytes = ipBytes(address);
      return subtree(der(0x87, Buffer.concat([bytes, Buffer.alloc(bytes.length, 0xff)])));
    }),
  ];
  return new x509.Extension('2.5.29.30', true, der(0x30, der(0xa0, ...subtrees)));
}

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  if (body.length > 0xffff) throw new BugError('DER value too long');
  const length = body.length < 0x80 ? [body.length] : body.length <= 0xff ? [0x81, body.length] : [0x82, body.length >> 8, body.length & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

function ipBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address) || address.includes('.')) throw new BugError(`not an IPv4 or plain IPv6 address: ${address}`);
  const groups = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const [head, tail] = address.split('::');
  const words = tail === undefined ? groups(head) : [...groups(head), ...Array<number>(8 - groups(head).length - groups(tail).length).fill(0), ...groups(tail)];
  const bytes = Buffer.alloc(16);
  words.forEach((word, i) => bytes.writeUInt16BE(word, i * 2));
  return bytes;
}
