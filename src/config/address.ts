/** `host:port` as written in azdb.yaml (`uri`, `http.address`). */
import { isIP, isIPv4, isIPv6 } from 'node:net';

export type HostPortResult =
  | { ok: true; host: string; port: number }
  | { ok: false; reason: string };

const HOST_PATTERN = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

/** Parses `host:port`; an IPv6 host comes back without its brackets. */
/** A host as it goes before `:port` (IPv6 addresses in brackets). */
export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function parseHostPort(text: string): HostPortResult {
  if (text.includes('://')) {
    return { ok: false, reason: 'expected host:port without a scheme (e.g. orders.postgres.database.azure.com:5432)' };
  }
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { ok: false, reason: 'an IPv6 address opened with "[" must be closed with "]"' };
    host = text.slice(1, close);
    if (!isIPv6(host)) return { ok: false, reason: `"${host}" in brackets is not an IPv6 address` };
    const rest = text.slice(close + 1);
    if (!rest.startsWith(':')) return { ok: false, reason: 'expected host:port, e.g. [::1]:5432; the port is missing' };
    portText = rest.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: 'expected host:port; the port is missing (5432 for PostgreSQL, 3306 for MySQL)' };
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return { ok: false, reason: 'put an IPv6 address in brackets, e.g. [::1]:5432' };
    if (host === '') return { ok: false, reason: 'expected host:port; the host is missing' };
    if (!isIP(host) && !HOST_PATTERN.test(host)) return { ok: false, reason: `"${host}" is not a valid host name` };
  }
  const port = parsePort(portText);
  if (port === undefined) return { ok: false, reason: `port must be an integer 1..65535, got "${portText}"` };
  return { ok: true, host, port };
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return isValidPort(port) ? port : undefined;
}

export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Loopback only: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === 'localhost') return true;
  if (isIPv4(bare)) return bare.startsWith('127.');
  return isIPv6(bare) && (bare === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(bare));
}
