import { describe, expect, it } from 'vitest';
import { audienceMatches, decodeTokenClaims, describeClaims } from '../../src/azure/token-claims.js';
import { createPrincipalSql } from '../../src/diagnostics/principal-sql.js';

const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('token claims', () => {
  it('reads v1 and v2 claims and describes them without the token', () => {
    const v2 = `${part({ alg: 'RS256' })}.${part({ aud: 'api://x', tid: 't', oid: 'o', azp: 'a', exp: 1_700_000_000, preferred_username: 'ann@contoso.com', idtyp: 'user' })}.sig`;
    const claims = decodeTokenClaims(v2)!;
    expect(claims).toEqual({ tenantId: 't', objectId: 'o', appId: 'a', audience: 'api://x', expiresOn: 1_700_000_000_000, identityType: 'user', upn: 'ann@contoso.com' });
    expect(describeClaims(claims)).toBe('tenant t, object id o, app id a, user ann@contoso.com, audience api://x, expires 2023-11-14T22:13:20.000Z');
  });

  it('returns undefined for something that is not a JWT', () => {
    expect(decodeTokenClaims('opaque')).toBeUndefined();
    expect(decodeTokenClaims('a.!!!.c')).toBeUndefined();
  });

  it('matches audiences with or without a trailing slash or /.default', () => {
    expect(audienceMatches('https://ossrdbms-aad.database.windows.net/', 'https://ossrdbms-aad.database.windows.net')).toBe(true);
    expect(audienceMatches('https://ossrdbms-aad.database.usgovcloudapi.net', 'https://ossrdbms-aad.database.windows.net')).toBe(false);
  });

  it('writes the principal SQL for applications and people, quoting names', () => {
    const app = { tenantId: 't', objectId: 'oid-1', appId: 'app-1', audience: 'x', expiresOn: 0, identityType: 'app', upn: undefined };
    expect(createPrincipalSql('postgres', "o'brien@legacy", app, 'legacy')).toBe("select * from pgaadauth_create_principal_with_oid('o''brien', 'oid-1', 'service', false, false);");
    // Only the single server's suffix goes: a database user may itself be a sign-in name.
    expect(createPrincipalSql('mysql', 'alice@contoso.com', app)).toBe("CREATE AADUSER 'alice@contoso.com' IDENTIFIED BY 'app-1';");
    expect(createPrincipalSql('mysql', 'alice@contoso.com', app, 'legacy')).toBe("CREATE AADUSER 'alice@contoso.com' IDENTIFIED BY 'app-1';");
    expect(createPrincipalSql('mysql', 'svc', app)).toBe("CREATE AADUSER 'svc' IDENTIFIED BY 'app-1';");
    expect(createPrincipalSql('postgres', 'ann', { ...app, identityType: 'user', upn: 'ann@contoso.com' })).toBe("select * from pgaadauth_create_principal('ann@contoso.com', false, false);");
  });
});
