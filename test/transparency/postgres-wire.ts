/**
 * What a PostgreSQL client observes, for the transparency suite: a raw protocol-3 session on
 * either path (straight to the emulated Azure front with TLS and the Entra token, or through an
 * azdb tunnel with SCRAM and the tunnel password), frontend message builders, and the transcript
 * of backend messages as plain data to compare — every field of every message, with only the
 * normalisations the README lists.
 */
import { createHash } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { FrameDecoder } from '../../src/broker/postgres/codec/frame-decoder.js';
import { cstring, encodeMessage, int32, PgPayloadReader } from '../../src/broker/postgres/codec/frames.js';
import { decodeBackendKeyData, decodeErrorFields, encodePasswordMessage, encodeSaslInitialResponse, encodeSaslResponse } from '../../src/broker/postgres/codec/messages.js';
import { encodeSslRequest, encodeStartupMessage } from '../../src/broker/postgres/codec/startup.js';
import { SCRAM_MECHANISM, ScramClient } from '../../src/broker/postgres/scram.js';
import { sendCancel } from '../helpers/pg-raw.js';

export interface BackendMessage {
  code: string;
  payload: Buffer;
}

/** Reads whole backend messages off a connected socket (plain or TLS) and writes frontend ones. */
export class PgWire {
  private readonly decoder = new FrameDecoder();
  private readonly queue: BackendMessage[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
        this.queue.push({ code: String.fromCharCode(frame.code), payload: Buffer.from(frame.payload) });
      }
      this.notify();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  get closed(): boolean {
    return this.ended;
  }

  send(...messages: Buffer[]): void {
    for (const message of messages) this.socket.write(message);
  }

  /** The next message; throws when the connection ends first or nothing comes within the deadline. */
  async next(what = 'a message', timeoutMs = 20_000): Promise<BackendMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.queue.shift();
      if (message) return message;
      if (this.ended) throw new Error(`the connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Messages up to and including the first for which `last` holds. */
  async until(last: (message: BackendMessage) => boolean, what: string): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      const message = await this.next(what);
      out.push(message);
      if (last(message)) return out;
    }
  }

  /** Messages up to and including the `count`-th ReadyForQuery. */
  async ready(count = 1): Promise<BackendMessage[]> {
    let seen = 0;
    return this.until((m) => m.code === 'Z' && ++seen === count, `ReadyForQuery ${count}`);
  }

  /** Everything until the server closes the connection. */
  async untilClosed(): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      try {
        out.push(await this.next('the close'));
      } catch (error) {
        if (this.ended) return out;
        throw error;
      }
    }
  }

  /** Terminate, then waits for the close. */
  async close(): Promise<void> {
    if (this.ended) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end(fe.terminate());
    await closed;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** A logged-in session: the wire, what the server sent from AuthenticationOk to ReadyForQuery, and the cancel key it gave. */
export interface PgSession {
  wire: PgWire;
  greeting: BackendMessage[];
  key: { processId: number; secretKey: Buffer };
}

/** One way to reach the server. */
export interface PgEndpoint {
  /** Connects and logs in with `params` added to the StartupMessage. */
  open(params?: Record<string, string>): Promise<PgSession>;
  /** A CancelRequest for `session` on a new connection, as libpq sends it; resolves once the server closed that connection. */
  cancel(session: PgSession): Promise<void>;
}

function connected(socket: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** Reads the greeting after authentication: AuthenticationOk … ReadyForQuery. */
async function greeting(wire: PgWire): Promise<PgSession> {
  const messages = await wire.ready();
  if (messages[0]?.code !== 'R' || messages[0].payload.readInt32BE(0) !== 0) throw new Error(`login failed: ${JSON.stringify(transcript(messages))}`);
  const key = messages.find((m) => m.code === 'K');
  if (!key) throw new Error('no BackendKeyData in the greeting');
  return { wire, greeting: messages, key: decodeBackendKeyData(key.payload) };
}

const authCode = (message: BackendMessage) => (message.code === 'R' ? message.payload.readInt32BE(0) : -1);

/** Straight to an emulated Azure server: SSLRequest, verified TLS, cleartext password with the Entra token. */
export function azureEndpoint(server: { host: string; port: number; fqdn: string }, ca: string, login: { user: string; database: string; token: () => Promise<string> }): PgEndpoint {
  return {
    async open(params = {}) {
      const tcp = await connected(tcpConnect({ port: server.port, host: server.host }));
      const answer = await new Promise<Buffer>((resolve) => {
        tcp.once('data', resolve);
        tcp.write(encodeSslRequest());
      });
      if (answer.toString() !== 'S') throw new Error(`the server answered SSLRequest with ${answer.toString('hex')}`);
      const tls = tlsConnect({ socket: tcp, ca, servername: server.fqdn });
      await new Promise<void>((resolve, reject) => {
        tls.once('secureConnect', resolve);
        tls.once('error', reject);
      });
      const wire = new PgWire(tls);
      wire.send(encodeStartupMessage({ user: login.user, database: login.database, ...params }));
      const request = await wire.next('the password request');
      if (authCode(request) !== 3) throw new Error(`expected AuthenticationCleartextPassword, got ${JSON.stringify(transcript([request]))}`);
      wire.send(encodePasswordMessage(await login.token()));
      return greeting(wire);
    },
    cancel: (session) => sendCancel(server.port, server.host, session.key),
  };
}

/** Through an azdb tunnel: no TLS on loopback, SCRAM-SHA-256 with the tunnel's password. */
export function tunnelEndpoint(tunnel: () => { host: string; port: number; user: string; database: string; password: string }): PgEndpoint {
  return {
    async open(params = {}) {
      const t = tunnel();
      const wire = new PgWire(await connected(tcpConnect({ port: t.port, host: t.host })));
      wire.send(encodeStartupMessage({ user: t.user, database: t.database, ...params }));
      const scram = new ScramClient(t.password);
      if (authCode(await wire.next('AuthenticationSASL')) !== 10) throw new Error('expected AuthenticationSASL');
      wire.send(encodeSaslInitialResponse(SCRAM_MECHANISM, scram.first()));
      const serverFirst = await wire.next('AuthenticationSASLContinue');
      if (authCode(serverFirst) !== 11) throw new Error(`expected AuthenticationSASLContinue, got ${JSON.stringify(transcript([serverFirst]))}`);
      wire.send(encodeSaslResponse(scram.final(serverFirst.payload.subarray(4))));
      const serverFinal = await wire.next('AuthenticationSASLFinal');
      if (authCode(serverFinal) !== 12) throw new Error(`expected AuthenticationSASLFinal, got ${JSON.stringify(transcript([serverFinal]))}`);
      scram.verifyFinal(serverFinal.payload.subarray(4));
      return greeting(wire);
    },
    cancel: (session) => sendCancel(tunnel().port, tunnel().host, session.key),
  };
}

// ---- Frontend messages -------------------------------------------------------------------------

const int16 = (value: number) => {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(value, 0);
  return b;
};
const int16s = (values: readonly number[]) => Buffer.concat([int16(values.length), ...values.map(int16)]);
const values = (list: ReadonlyArray<Buffer | string | null>) =>
  Buffer.concat([
    int16(list.length),
    ...list.flatMap((v) => (v === null ? [int32(-1)] : [int32(Buffer.byteLength(v)), Buffer.isBuffer(v) ? v : Buffer.from(v)])),
  ]);

/** Frontend messages by name. */
export const fe = {
  query: (sql: string) => encodeMessage(0x51, cstring(sql)),
  parse: (name: string, sql: string, types: readonly number[] = []) => encodeMessage(0x50, cstring(name), cstring(sql), int16(types.length), ...types.map(int32)),
  bind: (portal: string, statement: string, params: ReadonlyArray<Buffer | string | null>, formats: readonly number[] = [], resultFormats: readonly number[] = []) =>
    encodeMessage(0x42, cstring(portal), cstring(statement), int16s(formats), values(params), int16s(resultFormats)),
  describe: (kind: 'S' | 'P', name: string) => encodeMessage(0x44, Buffer.from(kind), cstring(name)),
  execute: (portal: string, maxRows = 0) => encodeMessage(0x45, cstring(portal), int32(maxRows)),
  close: (kind: 'S' | 'P', name: string) => encodeMessage(0x43, Buffer.from(kind), cstring(name)),
  sync: () => encodeMessage(0x53),
  flush: () => encodeMessage(0x48),
  copyData: (data: Buffer | string) => encodeMessage(0x64, Buffer.isBuffer(data) ? data : Buffer.from(data)),
  copyDone: () => encodeMessage(0x63),
  copyFail: (reason: string) => encodeMessage(0x66, cstring(reason)),
  functionCall: (oid: number, args: ReadonlyArray<Buffer | string | null>) => encodeMessage(0x46, int32(oid), int16s([0]), values(args), int16(0)),
  terminate: () => encodeMessage(0x58),
  int32,
};

// ---- Transcripts ---------------------------------------------------------------------------

/** Names for backend process ids: the sessions of a scenario by their BackendKeyData, else "another process". */
export type PidNames = (pid: number) => string;

/** DataRows and CopyData messages beyond this many in a row are summed up (count and md5). */
const RUN_LIMIT = 8;
/** Values longer than this are summed up (length and md5). */
const VALUE_LIMIT = 256;

const md5 = (...parts: Buffer[]) => {
  const hash = createHash('md5');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};

/** A value as text when it is printable ASCII, else as hex; a long one as its length and md5. */
function value(bytes: Buffer): unknown {
  if (bytes.length > VALUE_LIMIT) return { bytes: bytes.length, md5: md5(bytes) };
  return bytes.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a) ? bytes.toString('latin1') : `hex:${bytes.toString('hex')}`;
}

function describeMessage(message: BackendMessage, pids: PidNames): unknown {
  const { code, payload } = message;
  const reader = new PgPayloadReader(payload, code);
  const int16 = () => (reader.uint16() << 16) >> 16;
  switch (code) {
    case 'R':
      return { R: reader.int32() };
    case 'S':
      return { S: [reader.cstring(), reader.cstring()] };
    case 'K':
      // The secret key is azdb's own through a tunnel (cancels pass through azdb); the pid is named.
      return { K: pids(reader.int32()) };
    case 'Z':
      return { Z: String.fromCharCode(reader.byte()) };
    case 'C':
      return { C: reader.cstring() };
    case 'E':
    case 'N':
      return { [code]: decodeErrorFields(payload) };
    case 'T': {
      const columns = Array.from({ length: int16() }, () => ({
        name: reader.cstring(),
        table: reader.int32(),
        column: int16(),
        type: reader.int32(),
        size: int16(),
        typmod: reader.int32(),
        format: int16(),
      }));
      return { T: columns };
    }
    case 'D':
      return { D: Array.from({ length: int16() }, () => {
        const length = reader.int32();
        return length < 0 ? null : value(reader.bytes(length));
      }) };
    case 'A':
      return { A: { pid: pids(reader.int32()), channel: reader.cstring(), payload: reader.cstring() } };
    case 'G':
    case 'H':
    case 'W': {
      const format = reader.byte();
      return { [code]: { format, columns: Array.from({ length: int16() }, int16) } };
    }
    case 'd':
      return { d: value(payload) };
    case 't':
      return { t: Array.from({ length: int16() }, () => reader.int32()) };
    case 'V': {
      const length = reader.int32();
      return { V: length < 0 ? null : value(reader.bytes(length)) };
    }
    default:
      // ParseComplete '1', BindComplete '2', CloseComplete '3', NoData 'n', PortalSuspended 's',
      // EmptyQueryResponse 'I', CopyDone 'c': no payload; anything else as hex.
      return payload.length === 0 ? code : { [code]: payload.toString('hex') };
  }
}

/** The messages as plain data; runs of DataRow or CopyData longer than RUN_LIMIT summed up. */
export function transcript(messages: readonly BackendMessage[], pids: PidNames = () => 'a backend'): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < messages.length; ) {
    const code = messages[i]!.code;
    let end = i;
    while (end < messages.length && messages[end]!.code === code) end++;
    if ((code === 'D' || code === 'd') && end - i > RUN_LIMIT) {
      const run = messages.slice(i, end).map((m) => m.payload);
      out.push({ [code]: { messages: run.length, bytes: run.reduce((n, b) => n + b.length, 0), md5: md5(...run) } });
      i = end;
    } else {
      out.push(describeMessage(messages[i]!, pids));
      i += 1;
    }
  }
  return out;
}

/** Names the sessions of a scenario by their BackendKeyData pid ("A", "B", …). */
export function sessionNames(sessions: Record<string, PgSession>): PidNames {
  return (pid) => Object.entries(sessions).find(([, s]) => s.key.processId === pid)?.[0] ?? 'another process';
}
