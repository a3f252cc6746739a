import { describe, expect, it } from 'vitest';
import { identityOf } from '../../../../src/broker/postgres/pool/postgres-pool.js';

const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const jwt = (claims: object) => `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${Buffer.from('signature').toString('base64url')}`;

describe('identityOf (the identity part of a pool key)', () => {
  it('names the object id and tenant of a token, the same for every token of that identity', () => {
    const first = jwt({ oid: 'o-1', tid: 't-1', appid: 'a-1', exp: 1 });
    const refreshed = jwt({ oid: 'o-1', tid: 't-1', appid: 'a-1', exp: 2 });
    expect(identityOf(first)).toBe('oid:o-1@t-1');
    expect(identityOf(refreshed)).toBe(identityOf(first));
  });

  it('tells identities apart by object id, by tenant, and by app id when there is no object id', () => {
    expect(identityOf(jwt({ oid: 'o-2', tid: 't-1' }))).not.toBe(identityOf(jwt({ oid: 'o-1', tid: 't-1' })));
    expect(identityOf(jwt({ oid: 'o-1', tid: 't-2' }))).not.toBe(identityOf(jwt({ oid: 'o-1', tid: 't-1' })));
    expect(identityOf(jwt({ azp: 'app-9', tid: 't-1' }))).toBe('appid:app-9@t-1');
  });

  it('keys an opaque token by a hash of it, never by the token itself', () => {
    const identity = identityOf('not-a-jwt-secret-value');
    expect(identity).toMatch(/^token:[0-9a-f]{16}$/);
    expect(identity).not.toContain('secret');
    expect(identityOf('another-opaque-token')).not.toBe(identity);
  });
});
