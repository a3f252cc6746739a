/**
 * The OS user at the other end of a loopback connection, where the system says: on Linux the
 * kernel's socket table (`/proc/net/tcp`, `/proc/net/tcp6`) names the uid owning the client's
 * end, and `/etc/passwd` its name. Anywhere else, or for a client on another machine, it is not
 * known (undefined) — a shared broker's audit then names the person by their token only.
 */
import type { Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';

export type ReadText = (path: string) => Promise<string>;

const readText: ReadText = (path) => readFile(path, 'utf8');

export async function loopbackPeerUser(socket: Pick<Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>, read: ReadText = readText): Promise<string | undefined> {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || !remotePort || !localAddress || !localPort || !isLoopback(remoteAddress)) return undefined;
  try {
    const v6 = isIPv6(remoteAddress);
    const table = await read(v6 ? '/proc/net/tcp6' : '/proc/net/tcp');
    const clientEnd = `${encodeAddress(remoteAddress)}:${encodePort(remotePort)}`;
    const ourEnd = `${encodeAddress(localAddress)}:${encodePort(localPort)}`;
    for (const line of table.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid …
      if (fields[1]?.toUpperCase() === clientEnd && fields[2]?.toUpperCase() === ourEnd) return nameOf(fields[7], read);
    }
  } catch {
    // No /proc (not Linux) or not readable: not known.
  }
  return undefined;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

async function nameOf(uid: string | undefined, read: ReadText): Promise<string | undefined> {
  if (uid === undefined || !/^\d+$/.test(uid)) return undefined;
  const passwd = await read('/etc/passwd').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [name, , id] = line.split(':');
    if (id === uid && name) return name;
  }
  return `uid ${uid}`;
}

function encodePort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** The kernel's hex form: each 32-bit word of the address in host (little-endian) order. */
function encodeAddress(address: string): string {
  if (isIPv4(address)) return littleEndianWord(address.split('.').map(Number));
  const bytes = ipv6Bytes(address);
  let out = '';
  for (let i = 0; i < 16; i += 4) out += littleEndianWord(bytes.slice(i, i + 4));
  return out;
}

function littleEndianWord(bytes: number[]): string {
  return [...bytes]
    .reverse()
    .map((b) => b.toString(16).toUpperCase().padStart(2, '0'))
    .join('');
}

function ipv6Bytes(address: string): number[] {
  let text = address;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail.push(...v4[1]!.split('.').map(Number));
    text = `${text.slice(0, -v4[1]!.length)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const headWords = head ? head.split(':') : [];
  const restWords = rest === undefined ? [] : rest ? rest.split(':') : [];
  const zeros = rest === undefined ? 0 : 8 - headWords.length - restWords.length;
  const words = [...headWords, ...Array<string>(zeros).fill('0'), ...restWords].map((w) => parseInt(w || '0', 16));
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}
