/**
 * A raw PostgreSQL client for bad-input tests: writes exactly the bytes a test chooses, records
 * every byte the server sends back, and parses that record strictly as backend messages, so a
 * test can assert "an ErrorResponse with SQLSTATE X, then a close" or "a clean close".
 */
import { connect, type Socket } from 'node:net';
import { cstring, encodeMessage, int32 } from '../../src/broker/postgres/codec/frames.js';
import { decodeAuthentication, decodeErrorFields, encodeSaslInitialResponse, encodeSaslResponse } from '../../src/broker/postgres/codec/messages.js';
import { SCRAM_MECHANISM, ScramClient } from '../../src/broker/postgres/scram.js';
import { encodeCancelRequest, encodeStartupMessage } from '../../src/broker/postgres/codec/startup.js';

export interface BackendMessage {
  code: string;
  payload: Buffer;
}

export interface ParsedBackend {
  /** Single-byte answers to SSLRequest / GSSENCRequest that came before the first message. */
  answers: string;
  messages: BackendMessage[];
  /** Fields of the ErrorResponses, in order. */
  errors: Array<Record<string, string>>;
  /** The text of a protocol-2 error ("FATAL:  …\n"), which has no fields. */
  protocol2Error?: string;
}

/** Message types a backend may send (PostgreSQL protocol 3, "Message Formats"). */
const BACKEND_CODES = new Set('RKEZSNvCTDInst12cdGHWA3V'.split(''));
/** Authentication codes the broker may use before relaying. */
const AUTH_CODES = new Set([0, 3, 5, 10, 11, 12]);

/**
 * Parses what a server sent as: optional 'N'/'S' answer bytes, then whole backend messages
 * (`partial`: the last one may be cut short), or one protocol-2 error. Throws with a reason when the bytes are not a valid backend stream (unknown type, bad length,
 * truncated message, undecodable ErrorResponse or Authentication, bytes after a FATAL error).
 */
export function parseBackend(bytes: Buffer, options: { answers?: string; partial?: boolean } = {}): ParsedBackend {
  const allowed = options.answers ?? 'N';
  let offset = 0;
  let answers = '';
  // The broker sends no NoticeResponse or ParameterStatus before AuthenticationOk, so a leading
  // 'N' or 'S' byte is an answer to SSLRequest / GSSENCRequest.
  while (offset < bytes.length && allowed.includes(String.fromCharCode(bytes[offset]!))) {
    answers += String.fromCharCode(bytes[offset]!);
    offset += 1;
  }
  const messages: BackendMessage[] = [];
  const errors: Array<Record<string, string>> = [];
  let protocol2Error: string | undefined;
  let fatal = false;
  while (offset < bytes.length) {
    if (fatal) throw new Error(`bytes after a FATAL ErrorResponse at offset ${offset}`);
    if (messages.length === 0 && bytes.toString('latin1', offset, offset + 9) === 'EFATAL:  ') {
      // A protocol-2 error (the answer to a client that asked for protocol 1 or 2): 'E' and one
      // NUL-terminated text, no length, no SQLSTATE.
      const end = bytes.indexOf(0, offset);
      if (end < 0) throw new Error(`unterminated protocol-2 error at offset ${offset}`);
      messages.push({ code: 'E', payload: bytes.subarray(offset + 1, end) });
      protocol2Error = bytes.toString('utf8', offset + 1, end);
      fatal = true;
      offset = end + 1;
      continue;
    }
    // A client that hung up itself may have cut the last message short.
    if (options.partial && (bytes.length - offset < 5 || offset + 1 + bytes.readInt32BE(offset + 1) > bytes.length)) break;
    if (bytes.length - offset < 5) throw new Error(`truncated message header at offset ${offset}`);
    const code = String.fromCharCode(bytes[offset]!);
    const length = bytes.readInt32BE(offset + 1);
    if (!BACKEND_CODES.has(code)) throw new Error(`unknown backend message type 0x${bytes[offset]!.toString(16)} at offset ${offset}`);
    if (length < 4) throw new Error(`bad length ${length} for '${code}' at offset ${offset}`);
    if (offset + 1 + length > bytes.length) throw new Error(`truncated '${code}' message at offset ${offset}`);
    const payload = bytes.subarray(offset + 5, offset + 1 + length);
    if (code === 'E') {
      const fields = decodeErrorFields(payload);
      if (!/^[0-9A-Z]{5}$/.test(fields.C ?? '')) throw new Error(`ErrorResponse without a SQLSTATE: ${JSON.stringify(fields)}`);
      if (!fields.M) throw new Error('ErrorResponse without a message');
      errors.push(fields);
      fatal = fields.S === 'FATAL' || fields.V === 'FATAL';
    }
    if (code === 'R') {
      const auth = decodeAuthentication(payload);
      const authCode = payload.readInt32BE(0);
      if (auth.type === 'unsupported' || !AUTH_CODES.has(authCode)) throw new Error(`unexpected authentication request ${authCode}`);
    }
    messages.push({ code, payload });
    offset += 1 + length;
  }
  return { answers, messages, errors, ...(protocol2Error === undefined ? {} : { protocol2Error }) };
}

export interface RawResult {
  received: Buffer;
  /** How the connection ended: the server closed it, it reset it, or the test's bound ran out. */
  ended: 'closed' | 'reset' | 'timeout';
  ms: number;
}

/** One raw connection: write what the test wants, record what comes back. */
export class RawClient {
  readonly socket: Socket;
  private readonly chunks: Buffer[] = [];
  private readonly started = Date.now();
  private endedAs: RawResult['ended'] | undefined;
  private readonly waiters = new Set<() => void>();
  readonly done: Promise<RawResult>;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.done = new Promise((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        this.chunks.push(chunk);
        this.wakeAll();
      });
      // EPIPE or a write after the server's FIN are the client's own late writes, not a reset.
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNRESET') this.endedAs ??= 'reset';
      });
      socket.on('close', () => {
        this.endedAs ??= 'closed';
        this.wakeAll();
        resolve({ received: this.received, ended: this.endedAs, ms: Date.now() - this.started });
      });
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return RawClient.attach(connect({ port, host, noDelay: true }));
  }

  /** A raw client on a socket that is connecting (TCP, or a Unix socket such as the real PostgreSQL's). */
  static attach(socket: Socket): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get closed(): boolean {
    return this.endedAs !== undefined;
  }

  write(bytes: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves when `check` holds for the bytes received so far; throws if the server closes first. */
  async until<T>(check: (received: Buffer) => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check(this.received);
      if (value !== undefined) return value;
      if (this.closed) throw new Error(`the server closed the connection before ${what}; received ${this.received.toString('hex')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(done);
      });
    }
  }

  /** Waits for the connection to end, destroying it (and reporting 'timeout') after `timeoutMs`. */
  async finish(timeoutMs = 5_000): Promise<RawResult> {
    const timer = setTimeout(() => {
      this.endedAs ??= 'timeout';
      this.socket.destroy();
    }, timeoutMs);
    try {
      return await this.done;
    } finally {
      clearTimeout(timer);
    }
  }

  private wakeAll(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }
}

/** The whole messages at the front of a stream that may still be arriving (after 'N'/'S' answers). */
export function completeMessages(received: Buffer, answers = 'N'): BackendMessage[] {
  const out: BackendMessage[] = [];
  let offset = 0;
  while (offset < received.length && answers.includes(String.fromCharCode(received[offset]!))) offset += 1;
  while (received.length - offset >= 5) {
    const length = received.readInt32BE(offset + 1);
    if (length < 4 || offset + 1 + length > received.length) break;
    out.push({ code: String.fromCharCode(received[offset]!), payload: received.subarray(offset + 5, offset + 1 + length) });
    offset += 1 + length;
  }
  return out;
}

/** The first whole message of type `code` in the bytes received so far. */
export function findMessage(received: Buffer, code: string): BackendMessage | undefined {
  return completeMessages(received).find((m) => m.code === code);
}

/** The data of the first authentication request of type `authCode` received so far. */
export function authRequest(received: Buffer, authCode: number): Buffer | undefined {
  const m = completeMessages(received).find((m) => m.code === 'R' && m.payload.length >= 4 && m.payload.readInt32BE(0) === authCode);
  return m?.payload.subarray(4);
}

export const startupMessage = (user: string, database: string, extra: Record<string, string> = {}): Buffer =>
  encodeStartupMessage({ user, database, ...extra });

/** A regular message header with an arbitrary (possibly lying) length and no payload. */
export function header(code: string, length: number): Buffer {
  const b = Buffer.alloc(5);
  b.write(code, 0, 'latin1');
  b.writeInt32BE(length | 0, 1);
  return b;
}

/**
 * Logs a raw client in through a tunnel with SCRAM-SHA-256 and waits for ReadyForQuery.
 * Returns the client positioned after the greeting.
 */
export async function rawLogin(port: number, user: string, database: string, password: string): Promise<RawClient> {
  const client = await RawClient.connect(port);
  client.write(startupMessage(user, database));
  await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
  const scram = new ScramClient(password);
  client.write(encodeSaslInitialResponse(SCRAM_MECHANISM, scram.first()));
  const serverFirst = await client.until((b) => authRequest(b, 11), 'AuthenticationSASLContinue');
  client.write(encodeSaslResponse(scram.final(Buffer.from(serverFirst))));
  await client.until((b) => (findMessage(b, 'Z') ? true : undefined), 'ReadyForQuery', 15_000);
  return client;
}

export interface CancelKey {
  processId: number;
  secretKey: Buffer;
}

/** The BackendKeyData a `pg` client holds (in fields of its own). */
export function cancelKeyOf(client: object): CancelKey {
  const { processID, secretKey } = client as { processID: number; secretKey: number };
  const secret = Buffer.alloc(4);
  secret.writeInt32BE(secretKey);
  return { processId: processID, secretKey: secret };
}

/**
 * Sends a CancelRequest on a new connection and waits for the other end to close it. Failing to
 * connect rejects; a reset once the request is on its way does not (the server may just drop it).
 */
export async function sendCancel(port: number, host: string, key: CancelKey): Promise<void> {
  const socket = connect(port, host);
  let connected = false;
  await new Promise<void>((resolve, reject) => {
    socket.on('error', (error) => (connected ? undefined : reject(error)));
    socket.on('close', () => resolve());
    socket.on('data', () => {});
    socket.on('connect', () => {
      connected = true;
      socket.end(encodeCancelRequest(key.processId, key.secretKey));
    });
  });
}

export { cstring, encodeMessage, int32 };
