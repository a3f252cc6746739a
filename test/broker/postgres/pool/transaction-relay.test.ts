import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cstring, encodeMessage } from '../../../../src/broker/postgres/codec/frames.js';
import { encodeErrorResponse } from '../../../../src/broker/postgres/codec/messages.js';
import { AttachRefused, transactionRelay, type AttachReceiver, type TransactionRelayHost } from '../../../../src/broker/postgres/pool/transaction-relay.js';

/** A host whose pool never answers by itself: the test grants or refuses. */
class WaitingHost implements TransactionRelayHost {
  receiver: AttachReceiver | undefined;
  attaches = 0;
  endings: Array<string | undefined> = [];
  private asked: (() => void) | undefined;
  attach(_signal: AbortSignal, receiver: AttachReceiver): void {
    this.attaches++;
    this.receiver = receiver;
    this.asked?.();
  }
  waitForAttach(): Promise<void> {
    return this.attaches > 0 ? Promise.resolve() : new Promise((resolve) => (this.asked = resolve));
  }
  releaseIdle(): void {}
  releaseEnd(): Promise<void> {
    return Promise.resolve();
  }
  pin(): void {}
  attached(): void {}
  ended(error: string | undefined): void {
    this.endings.push(error);
  }
}

const query = (sql: string) => encodeMessage(0x51, cstring(sql));

let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
  server?.close();
  server = undefined;
});

/** A client connected to a socket relayed by transactionRelay with `host`. */
async function relayed(host: TransactionRelayHost): Promise<{ client: Socket; relayedSocket: Socket }> {
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer((socket) => resolve(socket));
  });
  server!.listen(0, '127.0.0.1');
  await once(server!, 'listening');
  const address = server!.address() as { port: number };
  const client = connect(address.port, '127.0.0.1');
  const relayedSocket = await accepted;
  sockets.push(client, relayedSocket);
  transactionRelay({ client: relayedSocket, early: Buffer.alloc(0), host, maxPreparedStatements: 0 });
  return { client, relayedSocket };
}

describe('the transaction relay while its client waits for a connection', () => {
  it('keeps reading a waiting client until it has sent 64 KiB, then stops reading it; a refusal reaches it as the ErrorResponse', async () => {
    const host = new WaitingHost();
    const { client, relayedSocket } = await relayed(host);
    client.write(query('select 1'));
    await host.waitForAttach();
    // Not paused for an ordinary wait: pause() and resume() per transaction cost a tick each.
    expect(relayedSocket.isPaused()).toBe(false);
    expect(host.attaches).toBe(1);
    const paused = once(relayedSocket, 'pause');
    client.write(Buffer.concat(Array.from({ length: 80 }, () => query(`select '${'x'.repeat(1000)}'`))));
    await paused;
    expect(relayedSocket.isPaused()).toBe(true);
    // One wait however much it sent.
    expect(host.attaches).toBe(1);
    const reply = encodeErrorResponse({ severity: 'FATAL', code: '53300', message: 'all pooled server connections are busy' });
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = once(client, 'close');
    host.receiver!.attachRefused(new AttachRefused(reply));
    await closed;
    expect(Buffer.concat(received).equals(reply)).toBe(true);
    expect(host.endings).toEqual(['no server connection for the client']);
  });
});
