import { readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { BugError, ExternalError, redactSecrets, toAzdbError, UserError } from '../src/errors.js';

describe('redactSecrets', () => {
  it('removes JWTs and the values of secret fields', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    expect(redactSecrets(`token ${jwt} rejected`)).toBe('token [redacted token] rejected');
    expect(redactSecrets('{"access_token":"abc.def","expires_in":3599}')).toBe('{"access_token":"[redacted]","expires_in":3599}');
    expect(redactSecrets('client_secret=s3cr3t&grant_type=x')).toBe('client_secret=[redacted]&grant_type=x');
    expect(redactSecrets('password: hunter2')).toBe('password: [redacted]');
  });

  it("keeps MySQL's (using password: YES|NO), which names no secret", () => {
    const message = "Access denied for user 'azdb-demo'@'127.0.0.1' (using password: YES)";
    expect(redactSecrets(message)).toBe(message);
    expect(redactSecrets('(using password: NO)')).toBe('(using password: NO)');
  });

  it('applies to every azdb error message and hint', () => {
    const error = new UserError('login failed with password=letmein', { hint: 'token: abc123' });
    expect(error.message).toBe('login failed with password=[redacted]');
    expect(error.hint).toBe('token: [redacted]');
  });
});

describe('toAzdbError', () => {
  const listen = (server: Server, port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });

  it('makes a port in use a user error that names the address and says what to do', async () => {
    const holder = createServer();
    await listen(holder, 0);
    const port = (holder.address() as AddressInfo).port;
    const second = createServer();
    try {
      const error = await listen(second, port).then(
        () => undefined,
        (e: unknown) => e,
      );
      const failure = toAzdbError(error);
      expect(failure).toBeInstanceOf(UserError);
      expect(failure.message).toBe(`cannot listen on 127.0.0.1:${port}: it is already in use`);
      expect(failure.hint).toContain('Pick another port');
    } finally {
      second.close();
      holder.close();
    }
  });

  it('makes a refused connection an external failure with the doctor as the next step', async () => {
    const error = await new Promise<unknown>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: 1 });
      socket.once('error', resolve);
    });
    const failure = toAzdbError(error);
    expect(failure).toBeInstanceOf(ExternalError);
    expect(failure.message).toContain('ECONNREFUSED');
    expect(failure.hint).toContain('azdb doctor');
  });

  it('makes a missing file a user error naming the path', async () => {
    const error = await readFile('/nonexistent/azdb.yaml').catch((e: unknown) => e);
    const failure = toAzdbError(error);
    expect(failure).toBeInstanceOf(UserError);
    expect(failure.message).toBe('no such file or folder: /nonexistent/azdb.yaml');
  });

  it('keeps azdb errors and calls anything else a bug', () => {
    const user = new UserError('bad flag', { usage: true });
    expect(toAzdbError(user)).toBe(user);
    expect(toAzdbError(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBeInstanceOf(BugError);
    expect(toAzdbError('thrown text')).toBeInstanceOf(BugError);
  });
});
