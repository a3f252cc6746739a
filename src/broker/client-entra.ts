/**
 * `client_auth: entra` as both protocols' sessions apply it: the client's password is its own
 * Entra access token, checked by the listener's validator; what a refusal tells the client (a
 * reason, never the token); and the token the upstream login uses (the person's with
 * `upstream_identity: client`, else the broker's).
 */
import type { ClientPerson, ClientTokenRefusal, ClientTokenValidator } from '../azure/client-token.js';

export type { ClientPerson, ClientTokenRefusal } from '../azure/client-token.js';

/** A listener's Entra sign-in, as its sessions get it. */
export interface EntraClientAuth {
  validate: ClientTokenValidator;
  /** `client`: the person's token goes upstream; `broker`: the broker's own identity logs in. */
  upstreamIdentity: 'broker' | 'client';
  /** End the session at its next transaction boundary once the person's token has expired. */
  disconnectExpired: boolean;
}

/** A signed-in client: who, and (only to pass upstream) its token. */
export interface SignedIn {
  person: ClientPerson;
  token: string;
}

const HINTS: Record<ClientTokenRefusal, string> = {
  malformed:
    'The password must be your Entra access token for the database: PGPASSWORD=$(az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv)',
  tenant: 'Your token is from a tenant this broker does not allow (allowed_tenants); sign in to the right one: az login --tenant TENANT',
  issuer: 'Your token was not issued by its tenant’s Entra ID; get one with az account get-access-token --resource-type oss-rdbms',
  audience: 'Your token is for another resource; get one for the database: az account get-access-token --resource-type oss-rdbms',
  expired: 'Your token has expired; get a new one: az account get-access-token --resource-type oss-rdbms',
  'not-yet-valid': 'Your token is not valid yet: check this machine’s clock and the broker’s',
  signature: 'Your token’s signature does not verify with its tenant’s Entra keys; get a new one with az account get-access-token --resource-type oss-rdbms',
  'keys-unavailable': 'The broker could not fetch Entra’s signing keys to check your token; try again shortly, or ask its operator',
};

const WHAT: Record<ClientTokenRefusal, string> = {
  malformed: 'the password is not an Entra access token',
  tenant: 'the token’s tenant is not allowed',
  issuer: 'the token’s issuer is not its tenant’s',
  audience: 'the token is not for the database resource',
  expired: 'the token has expired',
  'not-yet-valid': 'the token is not valid yet',
  signature: 'the token’s signature does not verify',
  'keys-unavailable': 'Entra’s signing keys could not be fetched',
};

/** `Entra sign-in refused for user "alice": the token has expired (expired)` and what to do. */
export function describeRefusal(reason: ClientTokenRefusal, user: string): { message: string; hint: string } {
  return { message: `Entra sign-in refused for user "${user}": ${WHAT[reason]} (${reason})`, hint: HINTS[reason] };
}

/** The token getter of the upstream login: the person's own token with `upstream_identity: client`. */
export function upstreamTokenGetter<T extends { getToken: (signal?: AbortSignal) => Promise<string> }>(options: T, entra: EntraClientAuth | undefined, signedIn: SignedIn | undefined): T {
  if (entra?.upstreamIdentity !== 'client' || !signedIn) return options;
  const { token } = signedIn;
  return { ...options, getToken: () => Promise.resolve(token) };
}

/**
 * Refusals that are not the client's doing (Entra's keys could not be fetched): they are not
 * counted against the client's source by the login backoff.
 */
const blameless = new WeakSet<Error>();

export function refusalFor<E extends Error>(reason: ClientTokenRefusal, error: E): E {
  if (reason === 'keys-unavailable') blameless.add(error);
  return error;
}

export function isBlameless(error: unknown): boolean {
  return error instanceof Error && blameless.has(error);
}
