import { describe, expect, it } from 'vitest';
import { redactSecrets, UserError } from '../src/errors.js';

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
