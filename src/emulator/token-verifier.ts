/**
 * What the emulated database fronts (PostgreSQL and MySQL) ask of the token issuer: is this
 * password a valid Entra access token for the database audience, and whose is it.
 */
export type TokenRejection = 'malformed' | 'signature' | 'expired' | 'not-yet-valid' | 'audience' | 'issuer';

export interface VerifiedIdentity {
  objectId: string;
  appId: string;
  /** 'app' for service principals and managed identities, 'user' for people. */
  type: 'app' | 'user';
  upn?: string;
}

export type TokenVerifier = (token: string) => Promise<{ ok: true; identity: VerifiedIdentity } | { ok: false; reason: TokenRejection }>;
