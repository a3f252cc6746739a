/**
 * The certificate of azdb's local tunnels, so a client that insists on TLS (`sslmode=require`,
 * JDBC `ssl=true`, `mysql --ssl`) gets it instead of a closed connection. A CA of azdb's own, kept
 * in `<state>/tls/` (`ca.pem`, and the key in `ca-key.pem`, 0600) and limited by name constraints
 * to localhost, 127.0.0.1 and ::1, issues the server certificate (`localhost-key.pem`: key and
 * certificate, 0600). Both are reused across runs, so a client that trusts `ca.pem` once
 * (`sslrootcert=…/ca.pem`) keeps verifying every later tunnel; a certificate near its end is
 * replaced by a new one from the same CA.
 */
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { usableKeyAndCertificate, type KeyAndCertificate } from './pem-bundle.js';
import { loadOrCreateFile, readTextIfExists } from './persist.js';

export interface LocalTls {
  /** For the tunnel's listener: TLS for the clients that ask for it. */
  context: SecureContext;
  /** The CA to trust (`sslrootcert`, `--ssl-ca`, a JDBC trust store). */
  caFile: string;
}

/** The names a local tunnel is reached by. */
export const LOCAL_NAMES = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };

const CA_NAME = 'CN=azdb local tunnel CA, O=azdb';
const SERVER_KEY_FILE = 'localhost-key.pem';
const DAY_MS = 86_400_000;
/** How long a server certificate is issued for, and how close to its end it is replaced. */
const SERVER_LIFETIME_MS = 397 * DAY_MS;
const SERVER_MIN_REMAINING_MS = 30 * DAY_MS;

const loaded = new Map<string, Promise<LocalTls>>();

/** The local tunnels' TLS for the state folder `stateDir`, made on first use (once per process). */
export function localTls(stateDir: string): Promise<LocalTls> {
  const dir = join(stateDir, 'tls');
  let pending = loaded.get(dir);
  if (!pending) {
    pending = loadOrCreateLocalTls(dir);
    // A failure (a read-only state folder) is not remembered: the next tunnel tries again.
    pending.catch(() => loaded.delete(dir));
    loaded.set(dir, pending);
  }
  return pending;
}

async function loadOrCreateLocalTls(dir: string): Promise<LocalTls> {
  const caFile = join(dir, 'ca.pem');
  const serverFile = join(dir, SERVER_KEY_FILE);
  // Every run but the first finds both files usable, and never loads the certificate generator.
  const caPem = await readTextIfExists(caFile);
  const bundle = await readTextIfExists(serverFile);
  const ready = caPem !== undefined && bundle !== undefined ? usableServerCertificate(bundle, caPem) : undefined;
  if (ready) return { context: contextOf(ready), caFile };

  const { loadOrCreateCa } = await import('./local-ca.js');
  const ca = await loadOrCreateCa(dir, { name: CA_NAME, permitted: LOCAL_NAMES });
  const server = await loadOrCreateFile(
    serverFile,
    (text) => usableServerCertificate(text, ca.caPem),
    async () => {
      const issued = await ca.issueServerCertificate({ ...LOCAL_NAMES, notAfter: new Date(Date.now() + SERVER_LIFETIME_MS) });
      return issued.keyPem + issued.certPem;
    },
  );
  return { context: contextOf(server), caFile: ca.caFile };
}

/** The server certificate in `bundle` when it is issued by `caPem`, names every local name and lasts. */
function usableServerCertificate(bundle: string, caPem: string): KeyAndCertificate | undefined {
  const found = usableKeyAndCertificate(bundle, SERVER_MIN_REMAINING_MS);
  if (!found) return undefined;
  try {
    const ca = new X509Certificate(caPem);
    const names = LOCAL_NAMES.dnsNames.every((name) => found.cert.checkHost(name, { wildcards: false }) === name) && LOCAL_NAMES.ipAddresses.every((ip) => found.cert.checkIP(ip) === ip);
    return names && found.cert.checkIssued(ca) && found.cert.verify(ca.publicKey) ? found : undefined;
  } catch {
    return undefined;
  }
}

function contextOf(server: KeyAndCertificate): SecureContext {
  return createSecureContext({ key: server.keyPem, cert: server.certPem, minVersion: 'TLSv1.2' });
}
