import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { md5PasswordAnswer, ScramClient, ScramServer } from '../../../src/broker/postgres/scram.js';
import { PgProtocolError } from '../../../src/broker/postgres/codec/protocol-error.js';

function exchange(clientPassword: string, serverPassword: string) {
  const client = new ScramClient(clientPassword);
  const server = new ScramServer(serverPassword, 4096);
  const serverFirst = server.first(client.first());
  return { client, result: server.final(client.final(serverFirst)) };
}

describe('SCRAM-SHA-256', () => {
  it('accepts the right password and both sides verify each other', () => {
    const { client, result } = exchange('s3cret', 's3cret');
    expect(result.ok).toBe(true);
    expect(() => client.verifyFinal((result as { serverFinal: Buffer }).serverFinal)).not.toThrow();
  });

  it('refuses a wrong password', () => {
    expect(exchange('wrong', 's3cret').result.ok).toBe(false);
  });

  it('rejects a server signature that does not match (a server that does not know the password)', () => {
    const client = new ScramClient('token');
    const impostor = new ScramServer('other', 4096);
    const serverFirst = impostor.first(client.first());
    client.final(serverFirst);
    expect(() => client.verifyFinal(Buffer.from(`v=${Buffer.alloc(32).toString('base64')}`))).toThrow(PgProtocolError);
  });

  it('rejects a server nonce that does not extend the client nonce, and absurd iteration counts', () => {
    const client = new ScramClient('token');
    client.first();
    expect(() => client.final(Buffer.from('r=other,s=c2FsdA==,i=4096'))).toThrow(PgProtocolError);
    const nonce = /r=([^,]+)/.exec(client.first().toString())![1];
    expect(() => client.final(Buffer.from(`r=${nonce}x,s=c2FsdA==,i=999999999`))).toThrow(PgProtocolError);
  });

  it('works with a SCRAM client implementation from the pg driver', async () => {
    const sasl = (await import('pg/lib/crypto/sasl.js')) as unknown as {
      startSession(mechanisms: string[]): { mechanism: string; clientNonce: string; response: string; message: string };
      continueSession(session: object, password: string, serverData: string): Promise<void>;
      finalizeSession(session: object, serverData: string): void;
    };
    const server = new ScramServer('pg-driver-password', 4096);
    const session = sasl.startSession(['SCRAM-SHA-256']);
    const serverFirst = server.first(Buffer.from(session.response));
    await sasl.continueSession(session, 'pg-driver-password', serverFirst.toString());
    const result = server.final(Buffer.from(session.response));
    expect(result.ok).toBe(true);
    expect(() => sasl.finalizeSession(session, (result as { serverFinal: Buffer }).serverFinal.toString())).not.toThrow();
  });
});

describe('SCRAM verifier reuse', () => {
  const saltOf = (server: ScramServer) => /,s=([^,]+),/.exec(server.first(Buffer.from('n,,n=*,r=abc')).toString())![1];

  it('gives one password one salt across logins (a stored verifier), and other passwords other salts', () => {
    expect(saltOf(new ScramServer('tunnel-one'))).toBe(saltOf(new ScramServer('tunnel-one')));
    expect(saltOf(new ScramServer('tunnel-one'))).not.toBe(saltOf(new ScramServer('tunnel-two')));
  });

  it('still refuses a proof made with another password once the right one has been seen', () => {
    for (const password of ['right', 'wrong', 'right']) {
      const client = new ScramClient(password);
      const server = new ScramServer('right');
      const serverFirst = server.first(client.first());
      expect(server.final(client.final(serverFirst)).ok).toBe(password === 'right');
    }
  });
});

describe('MD5 password answer', () => {
  it('matches PostgreSQL: md5 + md5(md5(password + user) + salt)', () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const inner = createHash('md5').update('pwalice').digest('hex');
    const expected = 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
    expect(md5PasswordAnswer('pw', 'alice', salt)).toBe(expected);
    expect(md5PasswordAnswer('pw', 'bob', salt)).not.toBe(expected);
  });
});
