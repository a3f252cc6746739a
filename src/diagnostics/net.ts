/**
 * DNS and TCP as the doctor does them: abortable, and failing with the errno code so the check
 * can tell a refused port from a dropped one.
 */
import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';

export async function lookupHost(host: string, signal: AbortSignal): Promise<string[]> {
  if (isIP(host)) return [host];
  // dns.lookup cannot be cancelled; the check's time limit stops waiting for it.
  signal.throwIfAborted();
  const addresses = await lookup(host, { all: true });
  return addresses.map((a) => a.address);
}

/** Resolves once connected; rejects with the socket error (code ECONNREFUSED, …) or on abort. */
export function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(error);
    });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(socket);
    });
  });
}
