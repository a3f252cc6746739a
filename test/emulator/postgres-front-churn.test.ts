/**
 * Churn through the emulated Azure PostgreSQL front: clients that hang up in the middle of a
 * large result must take their PostgreSQL backend with them. Counted on the real server in
 * pg_stat_activity, under an application_name of this test's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { CLOUDS } from '../../src/azure/clouds.js';
import { FrameDecoder } from '../../src/broker/postgres/codec/frame-decoder.js';
import { encodeMessage, cstring } from '../../src/broker/postgres/codec/frames.js';
import { BackendCode, decodeErrorFields, encodePasswordMessage, FrontendCode } from '../../src/broker/postgres/codec/messages.js';
import { encodeSslRequest, encodeStartupMessage } from '../../src/broker/postgres/codec/startup.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { startTestAzure } from '../harness/emulator.js';
import { waitFor } from '../helpers/wait.js';

const CLIENTS = 3_000;
/** Clients at once: enough to overlap logins and teardowns, far below max_connections. */
const PARALLEL = 8;
/** ProjectSet yields rows as they are sent: megabytes of result, none materialised first. */
const DATA_ROW = 0x44; // D
const LARGE_RESULT = "select repeat('x', 1024), generate_series(1, 100000)";

let azure: EmulatedAzure & { dir: string };
let tlsSession: Buffer | undefined;

beforeAll(async () => {
  azure = await startTestAzure({ realMariaDb: null });
});

afterAll(async () => {
  await azure?.stop();
});

/** Logs in through the front, starts LARGE_RESULT, and hangs up at its first row. */
async function hangUpMidResult(token: string, applicationName: string): Promise<void> {
  const server = azure.servers.find((s) => s.name === 'orders')!;
  const raw = connect(server.port, '127.0.0.1');
  let tls: TLSSocket | undefined;
  try {
    raw.setNoDelay(true);
    await once(raw, 'connect');
    raw.write(encodeSslRequest());
    const [answer] = (await once(raw, 'data')) as [Buffer];
    if (answer.toString() !== 'S') throw new Error(`SSLRequest answered ${JSON.stringify(answer.toString())}`);
    // Resuming the TLS session spares each client a full handshake: the churn is of logins and hang-ups.
    tls = tlsConnect({ socket: raw, servername: server.fqdn, ca: azure.caPem, ...(tlsSession ? { session: tlsSession } : {}) });
    tls.on('session', (session: Buffer) => {
      tlsSession = session;
    });
    await once(tls, 'secureConnect');
    tls.write(encodeStartupMessage({ user: server.loginUser, database: 'postgres', application_name: applicationName }));
    const decoder = new FrameDecoder();
    const socket = tls;
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('the front closed the connection before the first row')));
      socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
          switch (frame.code) {
            case BackendCode.Authentication:
              if (frame.payload.readInt32BE(0) === 3) socket.write(encodePasswordMessage(token));
              break;
            case BackendCode.ReadyForQuery:
              socket.write(encodeMessage(FrontendCode.Query, cstring(LARGE_RESULT)));
              break;
            case BackendCode.ErrorResponse:
              reject(new Error(decodeErrorFields(frame.payload).M));
              return;
            case DATA_ROW:
              resolve();
              return;
          }
        }
      });
    });
  } finally {
    // Mid-result: the server is still sending megabytes.
    tls?.destroy();
    raw.destroy();
  }
}

async function backendsOf(applicationName: string): Promise<number> {
  const { rows } = await azure.realPostgres.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName]);
  return Number(rows[0]!.n);
}

describe('the emulated PostgreSQL front under churn', () => {
  it(`leaves no backend behind after ${CLIENTS} clients hang up mid-result`, async () => {
    const token = await azure.issueToken({ audience: CLOUDS.AzureCloud.databaseResource });
    const applicationName = `churn-${randomBytes(4).toString('hex')}`;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < CLIENTS) {
        next += 1;
        await hangUpMidResult(token, applicationName);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    // Backends notice the hang-up as they write; none may stay blocked on a paused socket.
    await waitFor(async () => (await backendsOf(applicationName)) === 0, 'every churned backend to exit', 60_000);
    expect(await backendsOf(applicationName)).toBe(0);
  }, 600_000);
});
