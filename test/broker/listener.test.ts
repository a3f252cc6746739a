/**
 * The broker's listener as the kernel sees its client sockets: TCP keepalive is on (as PgBouncer
 * has it by default), so a client that vanished does not hold a session forever.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CLIENT_KEEPALIVE_MS, startListener } from '../../src/broker/listener.js';

/** Linux's view of the established TCP sockets on 127.0.0.1:`port`: the timer each has armed. */
async function serverSideTimers(port: number): Promise<Array<{ timer: number; ticksLeft: number }>> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const rows = (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1);
  return rows
    .map((row) => row.trim().split(/\s+/))
    .filter((fields) => fields[1] === local && fields[3] === '01') // ESTABLISHED
    .map((fields) => {
      const [timer, when] = fields[5]!.split(':');
      return { timer: parseInt(timer!, 16), ticksLeft: parseInt(when!, 16) };
    });
}

describe.skipIf(!existsSync('/proc/net/tcp'))('broker listener', () => {
  it('turns TCP keepalive on for every client socket', async () => {
    let accepted!: () => void;
    const handled = new Promise<void>((resolve) => (accepted = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const listener = await startListener({
      host: '127.0.0.1',
      port: 0,
      handle: async () => {
        accepted();
        await held;
      },
    });
    const client = connect(listener.port, '127.0.0.1');
    try {
      await once(client, 'connect');
      await handled;
      const timers = await serverSideTimers(listener.port);
      expect(timers).toHaveLength(1);
      // Timer 2 is keepalive (0 would be none: an idle socket without keepalive arms nothing).
      expect(timers[0]!.timer).toBe(2);
      // The first probe is due within the keepalive delay (the kernel counts in USER_HZ = 100 ticks/s).
      expect(timers[0]!.ticksLeft).toBeGreaterThan(0);
      expect(timers[0]!.ticksLeft).toBeLessThanOrEqual(CLIENT_KEEPALIVE_MS / 10);
    } finally {
      client.destroy();
      release();
      await listener.close();
    }
  });
});
