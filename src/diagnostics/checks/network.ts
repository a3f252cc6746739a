/** Doctor checks for the path to the server: DNS, then TCP (the seed's `nc -zv HOST PORT`). */
import { errorMessage } from '../../errors.js';
import { formatSeconds, result, type CheckResult } from '../check.js';
import type { DoctorDeps, DoctorState } from '../doctor-types.js';

export async function checkDns(state: DoctorState, deps: DoctorDeps, signal: AbortSignal): Promise<CheckResult> {
  const title = 'DNS resolve';
  const db = state.db!;
  try {
    const addresses = await deps.lookup(db.host, signal);
    if (addresses.length === 0) return result('dns', title, 'fail', `${db.host} resolves to no address`, dnsHint(db.host));
    return result('dns', title, 'pass', addresses.length === 1 && addresses[0] === db.host ? `${db.host} is an IP address` : `${db.host} → ${addresses.join(', ')}`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOTFOUND' ? 'does not resolve (no such name)' : `could not be resolved: ${code ?? errorMessage(error)}`;
    return result('dns', title, 'fail', `${db.host} ${why}`, dnsHint(db.host));
  }
}

function dnsHint(host: string): string {
  return `Check the uri of the database. A server behind a private endpoint resolves only inside its virtual network (privatelink DNS zone); from elsewhere use its public name or a VPN. Try \`nslookup ${host}\`.`;
}

export function firewallHint(host: string, port: number): string {
  return `A firewall is probably dropping the packets: allow this machine's public IP in the server's networking / firewall rules (and any NSG or corporate firewall on the way), or connect from inside its virtual network. Test with \`nc -zv ${host} ${port}\`.`;
}

export async function checkTcp(state: DoctorState, deps: DoctorDeps, signal: AbortSignal): Promise<CheckResult> {
  const title = 'TCP connect';
  const db = state.db!;
  const where = `${db.host}:${db.port}`;
  try {
    const socket = await deps.connect(db.host, db.port, signal);
    const address = socket.remoteAddress;
    socket.destroy();
    state.reachable = true;
    return result('tcp', title, 'pass', `connected to ${where}${address && address !== db.host ? ` (${address})` : ''}`);
  } catch (error) {
    state.reachable = false;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') {
      return result('tcp', title, 'fail', `connection to ${where} refused: nothing listens there`, `Check the port (PostgreSQL 5432, MySQL 3306) and that the server is started (a stopped server refuses connections).`);
    }
    if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
      return result('tcp', title, 'fail', `${where} is unreachable (${code})`, firewallHint(db.host, db.port));
    }
    return result('tcp', title, 'fail', `could not connect to ${where}: ${code ?? errorMessage(error)}`, `Is the server running and reachable? Try \`nc -zv ${db.host} ${db.port}\`.`);
  }
}

export function tcpTimeout(state: DoctorState) {
  return (limitMs: number) => {
    const db = state.db!;
    state.reachable = false;
    return { detail: `no answer from ${db.host}:${db.port} within ${formatSeconds(limitMs)}: the connection timed out`, hint: firewallHint(db.host, db.port) };
  };
}
