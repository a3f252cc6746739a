/**
 * One PEM file holding a private key and its certificate (key first, haproxy-style), as azdb keeps
 * its local CA and its local tunnel certificate. Reading it needs only node:crypto, so a process
 * that finds a usable file never loads the certificate generator.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';

export interface KeyAndCertificate {
  keyPem: string;
  certPem: string;
  cert: X509Certificate;
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----\n?/g;

/**
 * The key and certificate in `bundle` when the key belongs to the certificate and the certificate
 * is valid now and for at least `minRemainingMs` more; otherwise undefined (replace the file).
 */
export function usableKeyAndCertificate(bundle: string, minRemainingMs: number): KeyAndCertificate | undefined {
  const blocks = [...bundle.matchAll(PEM_BLOCK)];
  const keyPem = blocks.find((block) => block[1] === 'PRIVATE KEY')?.[0];
  const certPem = blocks.find((block) => block[1] === 'CERTIFICATE')?.[0];
  if (keyPem === undefined || certPem === undefined) return undefined;
  try {
    const cert = new X509Certificate(certPem);
    const now = Date.now();
    const usable = cert.checkPrivateKey(createPrivateKey(keyPem)) && Date.parse(cert.validFrom) <= now && Date.parse(cert.validTo) - now > minRemainingMs;
    return usable ? { keyPem: withNewline(keyPem), certPem: withNewline(certPem), cert } : undefined;
  } catch {
    return undefined;
  }
}

function withNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}
