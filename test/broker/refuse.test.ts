/**
 * The "too many connections" answers of a broker at its cap, byte for byte as clients read them.
 */
import { describe, expect, it } from 'vitest';
import { connect, createServer, type Socket } from 'node:net';
import { CancelRegistry } from '../../src/broker/cancel-registry.js';
import { refuseMySql, refusePostgres, type RefusalOutcome } from '../../src/broker/refuse.js';
import { decodeErr } from '../../src/broker/mysql/codec/responses.js';
import { encodeCancelRequest, encodeSslRequest } from '../../src/broker/postgres/codec/startup.js';
import { waitFor } from '../helpers/wait.js';
import { parseBackend, startupMessage } from '../helpers/pg-raw.js';

/** A client socket whose server side is refused with `refuse`; resolves with all bytes the client got. */
async function refusedExchange(
  refuse: (socket: Socket) => Promise<RefusalOutcome>,
  send: (client: Socket, received: () => Buffer) => Promise<void> | void,
): Promise<{ bytes: Buffer; outcome: RefusalOutcome }> {
  let outcome: Promise<RefusalOutcome> | undefined;
  const server = createServer((socket) => (outcome = refuse(socket)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  const chunks: Buffer[] = [];
  client.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((r) => client.on('close', () => r()));
  client.on('error', () => {});
  await new Promise<void>((r) => client.once('connect', () => r()));
  await send(client, () => Buffer.concat(chunks));
  await closed;
  server.close();
  if (!outcome) throw new Error('the server never saw the connection');
  return { bytes: Buffer.concat(chunks), outcome: await outcome };
}

function until(received: () => Buffer, length: number): Promise<boolean> {
  return waitFor(() => received().length >= length, `${length} bytes from the broker`);
}

describe('refusePostgres', () => {
  it('answers SSLRequest with N, then the startup with FATAL 53300 as PostgreSQL does', async () => {
    const { bytes, outcome } = await refusedExchange(
      (s) => refusePostgres(s, { limit: 7 }),
      async (client, received) => {
        client.write(encodeSslRequest());
        await until(received, 1);
        client.write(startupMessage('app', 'orders'));
      },
    );
    expect(outcome).toBe('refused');
    const parsed = parseBackend(bytes);
    expect(parsed.answers).toBe('N');
    expect(parsed.errors).toHaveLength(1);
    expect(parsed.errors[0]).toMatchObject({ S: 'FATAL', C: '53300', M: 'sorry, too many clients already' });
    expect(parsed.errors[0]!.H).toContain('at most 7 concurrent sessions');
  });

  it('still forwards a matching CancelRequest at the cap', async () => {
    const cancels = new CancelRegistry();
    let cancelled = 0;
    const key = cancels.mint({ cancel: async () => void (cancelled += 1) });
    const { bytes, outcome } = await refusedExchange(
      (s) => refusePostgres(s, { limit: 1, cancels }),
      (client) => void client.write(encodeCancelRequest(key.processId, key.secretKey)),
    );
    expect(outcome).toBe('cancel');
    expect(bytes.length).toBe(0);
    expect(cancelled).toBe(1);
  });

  it('gives up quietly on a client that never sends a startup packet', async () => {
    const { bytes, outcome } = await refusedExchange((s) => refusePostgres(s, { limit: 1, deadlineMs: 50 }), () => {});
    expect(outcome).toBe('closed');
    expect(bytes.length).toBe(0);
  });
});

describe('refuseMySql', () => {
  it('sends ERR 1040 (SQLSTATE 08004) as the first packet, sequence 0', async () => {
    const { bytes, outcome } = await refusedExchange((s) => refuseMySql(s, { limit: 3 }), () => {});
    expect(outcome).toBe('refused');
    const length = bytes.readUIntLE(0, 3);
    expect(bytes.length).toBe(4 + length);
    expect(bytes[3]).toBe(0);
    const err = decodeErr(bytes.subarray(4));
    expect(err).toMatchObject({ code: 1040, sqlState: '08004' });
    expect(err.message).toMatch(/^Too many connections: .*at most 3 concurrent sessions/);
  });
});
