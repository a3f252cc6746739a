/**
 * What the emulated database fronts (PostgreSQL and MySQL) ask of the token issuer: is this
 * password a valid Entra access token for the database audience, and whose is it.
 */
import type { TokenRejectionReason } from './entra.js';

/** Why the issuer refused a token (the emulated Entra's own reasons). */
export type TokenRejection = TokenRejectionReason;

export interface VerifiedIdentity {
  objectId: string;
  appId: string;
  /** 'app' for service principals and managed identities, 'user' for people. */
  type: 'app' | 'user';
  upn?: string;
  /** Object ids of the person's groups (the token's `groups` claim): a group principal's members log in as the group. */
  groups: string[];
}

export type TokenVerifier = (token: string) => Promise<{ ok: true; identity: VerifiedIdentity } | { ok: false; reason: TokenRejection }>;
