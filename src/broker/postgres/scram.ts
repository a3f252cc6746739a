/**
 * SCRAM-SHA-256 (RFC 5802 / 7677) as PostgreSQL uses it, both sides, without channel binding.
 * Pure apart from randomness: the broker is the server to local clients (the tunnel password) and
 * the client to upstream servers that ask for SCRAM (the Entra token is the password).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { PgProtocolError } from './codec/protocol-error.js';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';
const MAX_ITERATIONS = 100_000;
const MAX_SCRAM_MESSAGE = 2048;

const hmac = (key: Buffer, text: string | Buffer) => createHmac('sha256', key).update(text).digest();
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((byte, i) => byte ^ b[i]!));

function parseAttributes(message: string, what: string): Map<string, string> {
  if (message.length > MAX_SCRAM_MESSAGE) throw new PgProtocolError(`${what} is too long`);
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new PgProtocolError(`${what} is malformed`);
    attributes.set(part[0]!, part.slice(2));
  }
  return attributes;
}

function required(attributes: Map<string, string>, key: string, what: string): string {
  const value = attributes.get(key);
  if (value === undefined || value === '') throw new PgProtocolError(`${what} has no "${key}" attribute`);
  return value;
}

interface DerivedKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/**
 * PBKDF2 with 4096 rounds costs about a millisecond of CPU, and the inputs repeat: a tunnel's
 * password with its salt on every local login, the cached token with the server's fixed salt on
 * every upstream login. Remember the last few results (keyed by a digest, never the password).
 */
const MAX_REMEMBERED_KEYS = 64;
const rememberedKeys = new Map<string, DerivedKeys>();

function keys(password: string, salt: Buffer, iterations: number): DerivedKeys {
  const id = createHash('sha256').update(password).update('\0').update(salt).update(`\0${iterations}`).digest('base64');
  const known = rememberedKeys.get(id);
  if (known) return known;
  const saltedPassword = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = hmac(saltedPassword, 'Client Key');
  const derived = { clientKey, storedKey: sha256(clientKey), serverKey: hmac(saltedPassword, 'Server Key') };
  if (rememberedKeys.size >= MAX_REMEMBERED_KEYS) rememberedKeys.delete(rememberedKeys.keys().next().value!);
  rememberedKeys.set(id, derived);
  return derived;
}

/** A per-process secret: each password gets a fixed, unpredictable salt, as a stored verifier would. */
const SALT_KEY = randomBytes(32);
const saltFor = (password: string) => hmac(SALT_KEY, password).subarray(0, 16);

/** The client side: answer a server's SCRAM-SHA-256 challenge with `password`. */
export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private readonly clientFirstBare = `n=*,r=${this.clientNonce}`;
  private expectedServerSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  /** client-first-message, for SASLInitialResponse. */
  first(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  /** client-final-message for the server-first-message of SASLContinue. */
  final(serverFirstData: Buffer): Buffer {
    const serverFirst = serverFirstData.toString('utf8');
    const attributes = parseAttributes(serverFirst, 'SCRAM server-first-message');
    const nonce = required(attributes, 'r', 'SCRAM server-first-message');
    const salt = Buffer.from(required(attributes, 's', 'SCRAM server-first-message'), 'base64');
    const iterations = Number(required(attributes, 'i', 'SCRAM server-first-message'));
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new PgProtocolError('SCRAM server nonce does not extend the client nonce');
    }
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
      throw new PgProtocolError(`SCRAM iteration count ${iterations} is out of range`);
    }
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const { clientKey, storedKey, serverKey } = keys(this.password, salt, iterations);
    this.expectedServerSignature = hmac(serverKey, authMessage);
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Checks the server's signature in SASLFinal: proves the server knew the password too. */
  verifyFinal(serverFinalData: Buffer): void {
    const attributes = parseAttributes(serverFinalData.toString('utf8'), 'SCRAM server-final-message');
    const error = attributes.get('e');
    if (error) throw new PgProtocolError(`SCRAM failed on the server: ${error}`);
    const signature = Buffer.from(required(attributes, 'v', 'SCRAM server-final-message'), 'base64');
    if (!this.expectedServerSignature || signature.length !== 32 || !timingSafeEqual(signature, this.expectedServerSignature)) {
      throw new PgProtocolError('SCRAM server signature does not match');
    }
  }
}

/** The server side: check a client's proof of `password`. */
export class ScramServer {
  private readonly salt: Buffer;
  private readonly serverNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';

  constructor(
    private readonly password: string,
    private readonly iterations = 4096,
  ) {
    this.salt = saltFor(password);
  }

  /** Takes the client-first-message; returns the server-first-message. */
  first(clientFirstData: Buffer): Buffer {
    const clientFirst = clientFirstData.toString('utf8');
    if (clientFirst.length > MAX_SCRAM_MESSAGE) throw new PgProtocolError('SCRAM client-first-message is too long');
    // gs2 header: "n,," (no channel binding) or "y,," (client supports it, server does not).
    const match = /^([ny]),(?:a=[^,]*)?,(.*)$/.exec(clientFirst);
    if (!match) throw new PgProtocolError('SCRAM client-first-message has an unsupported GS2 header (channel binding is not offered)');
    this.clientFirstBare = match[2]!;
    const attributes = parseAttributes(this.clientFirstBare, 'SCRAM client-first-message');
    const clientNonce = required(attributes, 'r', 'SCRAM client-first-message');
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.salt.toString('base64')},i=${this.iterations}`;
    return Buffer.from(this.serverFirst);
  }

  /**
   * Takes the client-final-message; returns the server-final-message when the proof is right.
   * `password` defaults to the one given at construction (the emulator tries several).
   */
  final(clientFinalData: Buffer, password = this.password): { ok: true; serverFinal: Buffer } | { ok: false } {
    const clientFinal = clientFinalData.toString('utf8');
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) throw new PgProtocolError('SCRAM client-final-message has no proof');
    const withoutProof = clientFinal.slice(0, proofAt);
    const attributes = parseAttributes(clientFinal, 'SCRAM client-final-message');
    if (required(attributes, 'r', 'SCRAM client-final-message') !== this.nonce) return { ok: false };
    const proof = Buffer.from(required(attributes, 'p', 'SCRAM client-final-message'), 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const { storedKey, serverKey } = keys(password, this.salt, this.iterations);
    if (proof.length !== 32) return { ok: false };
    const clientKey = xor(proof, hmac(storedKey, authMessage));
    if (!timingSafeEqual(sha256(clientKey), storedKey)) return { ok: false };
    return { ok: true, serverFinal: Buffer.from(`v=${hmac(serverKey, authMessage).toString('base64')}`) };
  }
}

/** PostgreSQL's MD5 password answer: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordAnswer(password: string, user: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return `md5${createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')}`;
}
