/** Doctor check of the TLS handshake and the server's certificate: chain, name, dates. */
import { CLOUDS, type CloudName } from '../../azure/clouds.js';
import { AzdbError, errorMessage } from '../../errors.js';
import { formatSeconds, result, type CheckResult } from '../check.js';
import { NoTlsOffered, type CertificateReport } from '../tls-probe.js';
import type { DoctorDeps, DoctorState } from '../doctor-types.js';

const DAY_MS = 86_400_000;
/** A certificate closer than this to its end is worth a warning. */
const EXPIRY_WARNING_MS = 14 * DAY_MS;

const CA_HINT =
  'Azure Database for PostgreSQL and MySQL certificates chain to DigiCert Global Root G2 or Microsoft RSA Root Certificate Authority 2017 (older servers: DigiCert Global Root CA); put those roots in one PEM file and set tls.ca_file to it (https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-networking-ssl-tls).';

export async function checkTls(state: DoctorState, deps: DoctorDeps, signal: AbortSignal): Promise<CheckResult> {
  const title = 'TLS and certificate';
  const db = state.db!;
  let target;
  try {
    target = await deps.resolveTarget(db);
  } catch (error) {
    return result('tls', title, 'fail', errorMessage(error), error instanceof AzdbError && error.hint ? error.hint : '');
  }
  state.target = target;
  let report: CertificateReport;
  try {
    const socket = await deps.connect(db.host, db.port, signal);
    report = await deps.probeTls(socket, target, signal);
  } catch (error) {
    if (error instanceof NoTlsOffered) return result('tls', title, 'fail', error.message, 'Point the uri at the Azure server (port 5432 for PostgreSQL, 3306 for MySQL); Azure always offers TLS.');
    const code = (error as NodeJS.ErrnoException).code;
    return result('tls', title, 'fail', `the TLS handshake with ${db.host}:${db.port} failed: ${code ?? ''} ${errorMessage(error)}`.replace(/\s+/g, ' '), 'A proxy or firewall may be interfering with TLS; check the port is the database\'s. Clients show this as "SSL SYSCALL error: EOF detected".');
  }
  const names = report.altNames.length > 0 ? report.altNames.join(', ') : report.subject;
  const about = `certificate for ${names}, issued by ${report.issuer || '?'}, valid ${report.validFrom.toISOString().slice(0, 10)} to ${report.validTo.toISOString().slice(0, 10)}`;
  const insecure = target.tls.mode === 'insecure';
  const problem = (detail: string, hint: string): CheckResult => {
    state.tlsOk = insecure;
    return insecure
      ? result('tls', title, 'warn', `${detail} (tls.mode insecure: azdb does not verify it)`, hint)
      : result('tls', title, 'fail', detail, hint);
  };
  const now = deps.now();
  if (report.validTo.getTime() < now || report.chainError === 'CERT_HAS_EXPIRED') {
    return problem(`the server's certificate expired on ${report.validTo.toISOString()} (${about})`, 'The server presents an expired certificate: renew it on the server (Azure rotates its own; a proxy in between may present its own), and check this machine\'s clock.');
  }
  if (report.validFrom.getTime() > now || report.chainError === 'CERT_NOT_YET_VALID') {
    return problem(`the server's certificate is not valid before ${report.validFrom.toISOString()} (${about})`, 'Check this machine\'s clock.');
  }
  // Node folds the host name check into authorizationError when a servername was given.
  const nameError = report.nameError ?? (report.chainError === 'ERR_TLS_CERT_ALTNAME_INVALID' ? report.chainError : undefined);
  if (report.chainError && report.chainError !== 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return problem(`the certificate chain does not verify against ${target.tls.caSource}: ${report.chainError} (${about})`, CA_HINT);
  }
  if (nameError) {
    return problem(
      `the certificate does not carry the name "${target.tls.serverName}": it is for ${names}`,
      `Use the server's own name: set tls.server_name of "${db.name}" (or the host in its uri) to one of ${names}, e.g. ${exampleServerName(db, state.setup?.config.azure.cloud)}.`,
    );
  }
  state.tlsOk = true;
  const detail = `${report.tlsVersion}, ${about}; chain verified against ${target.tls.caSource}${report.serverVersion ? `; server ${report.serverVersion}` : ''}`;
  const left = report.validTo.getTime() - now;
  if (left < EXPIRY_WARNING_MS) return result('tls', title, 'warn', `${detail}; expires in ${Math.max(0, Math.floor(left / DAY_MS))} days`, 'The certificate expires soon; Azure rotates its own, so a proxy in between may be presenting this one.');
  if (insecure) return result('tls', title, 'warn', `${detail}; tls.mode insecure: azdb does not verify it`, 'Set tls.mode: verify-full (the certificate verifies).');
  return result('tls', title, 'pass', detail);
}

export function tlsTimeout(state: DoctorState) {
  return (limitMs: number) => {
    const db = state.db!;
    const what = db.protocol === 'mysql' ? 'send its greeting' : 'answer the SSLRequest';
    return {
      detail: `${db.host}:${db.port} accepted the connection but did not ${what} or finish the TLS handshake within ${formatSeconds(limitMs)}`,
      hint: `Something on the way accepts connections and then swallows them (a firewall, proxy or load balancer), or the port is not the database's. Check the port and the firewall rules; psql shows this as a hang or "SSL SYSCALL error".`,
    };
  };
}

/** The Azure name a server of `db` would have: its server name (discovered names may carry a suffix) in the cloud's domain. */
function exampleServerName(db: NonNullable<DoctorState['db']>, cloud: CloudName | undefined): string {
  const clouds = CLOUDS[cloud ?? 'AzureCloud'];
  return `${db.azure?.server_name ?? db.name}.${db.protocol === 'mysql' ? clouds.mysqlSuffix : clouds.postgresSuffix}`;
}
