/** The OS user at a loopback client's end, from the kernel's socket table as Linux writes it. */
import { describe, expect, it } from 'vitest';
import { loopbackPeerUser, type ReadText } from '../../src/broker/peer-user.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const files: Record<string, string> = {
  '/proc/net/tcp': [
    HEADER,
    // The listener (127.0.0.1:5432 = 0x1538, LISTEN) and both ends of one connection from port 40000 (0x9C40).
    '   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:1538 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   999        0 2 1 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:9C40 0100007F:1538 01 00000000:00000000 00:00000000 00000000  1001        0 3 1 0000000000000000 20 4 30 10 -1',
  ].join('\n'),
  '/proc/net/tcp6': [
    HEADER,
    '   0: 00000000000000000000000001000000:9C41 00000000000000000000000001000000:1538 01 00000000:00000000 00:00000000 00000000  1002        0 4 1',
    '   1: 0000000000000000FFFF00000100007F:9C42 0000000000000000FFFF00000100007F:1538 01 00000000:00000000 00:00000000 00000000  4242        0 5 1',
  ].join('\n'),
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nazdb:x:999:999::/var/lib/azdb:/usr/sbin/nologin\nalice:x:1001:1001:Alice:/home/alice:/bin/bash\nbob:x:1002:1002::/home/bob:/bin/sh\n',
};
const read: ReadText = async (path) => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT ${path}`);
  return text;
};

describe('loopbackPeerUser', () => {
  it('names the owner of the client end of an IPv4, IPv6 and mapped loopback connection', async () => {
    expect(await loopbackPeerUser({ remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 5432 }, read)).toBe('alice');
    expect(await loopbackPeerUser({ remoteAddress: '::1', remotePort: 40001, localAddress: '::1', localPort: 5432 }, read)).toBe('bob');
    expect(await loopbackPeerUser({ remoteAddress: '::ffff:127.0.0.1', remotePort: 40002, localAddress: '::ffff:127.0.0.1', localPort: 5432 }, read)).toBe('uid 4242');
  });

  it('does not know a remote client, an unknown connection, or a system without the table', async () => {
    expect(await loopbackPeerUser({ remoteAddress: '10.0.0.7', remotePort: 40000, localAddress: '10.0.0.1', localPort: 5432 }, read)).toBeUndefined();
    expect(await loopbackPeerUser({ remoteAddress: '127.0.0.1', remotePort: 40009, localAddress: '127.0.0.1', localPort: 5432 }, read)).toBeUndefined();
    expect(await loopbackPeerUser({ remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 5432 }, async () => Promise.reject(new Error('ENOENT')))).toBeUndefined();
  });
});
