/**
 * Doctor check of the local client program: psql for PostgreSQL (its version, and the
 * OpenSSL / "SSL SYSCALL error" case), mariadb or mysql for MySQL.
 */
import { result, type CheckResult } from '../check.js';
import type { DoctorDeps, DoctorState } from '../doctor-types.js';

const SSL_SYSCALL =
  'psql\'s "SSL SYSCALL error: EOF detected" on a direct connection to Azure means the TLS connection was cut: an idle timeout or firewall in between, or an old libpq/OpenSSL that Azure\'s TLS 1.2+ refuses. Through azdb, psql talks plain to the loopback tunnel and azdb does the TLS, so its OpenSSL does not matter.';

export async function checkClient(state: DoctorState, deps: DoctorDeps, signal: AbortSignal): Promise<CheckResult> {
  const title = 'Client program';
  const protocol = state.db!.protocol;
  const program = await deps.findClient(protocol, signal);
  if (!program) {
    return protocol === 'mysql'
      ? result('client', title, 'warn', 'neither mariadb nor mysql is installed: `azdb db connect` needs one', 'Install a MySQL client (Debian/Ubuntu: apt-get install mariadb-client); drivers and GUI clients work with `azdb proxy db`.')
      : result('client', title, 'warn', 'psql is not installed: `azdb db connect` needs it', 'Install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq); drivers and GUI clients work with `azdb proxy db`.');
  }
  if (protocol === 'mysql') return result('client', title, 'pass', `${program.name} at ${program.path}: ${program.version}`);
  const major = Number(/(\d+)(?:\.\d+)?/.exec(program.version.replace(/^[^\d]*/, ''))?.[1] ?? NaN);
  if (Number.isFinite(major) && major < 10) {
    return result('client', title, 'fail', `${program.version} at ${program.path} cannot answer SCRAM-SHA-256, which azdb's tunnel asks for`, 'Install psql 10 or newer (PostgreSQL 14+ recommended).');
  }
  if (Number.isFinite(major) && major < 12) {
    return result('client', title, 'warn', `${program.version} at ${program.path} is old`, `Upgrade to psql 14 or newer. ${SSL_SYSCALL}`);
  }
  return result('client', title, 'pass', `${program.version} at ${program.path}`, SSL_SYSCALL);
}
