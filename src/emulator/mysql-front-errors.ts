/**
 * The ERR packets the emulated Azure Database for MySQL sends while a client logs in, with the
 * codes and texts of the real servers: MySQL's own for flexible servers (require_secure_transport,
 * access denied), the single-server gateway's 9xxx codes, and for token failures the same clear
 * sentences as the PostgreSQL front under MySQL's access-denied code.
 */
import type { ErrPacket } from '../broker/mysql/codec/responses.js';
import type { TokenRejection } from './token-verifier.js';

export class MySqlLoginRefused extends Error {
  constructor(readonly err: ErrPacket) {
    super(err.message);
  }
}

const refusal = (code: number, sqlState: string, message: string): MySqlLoginRefused => new MySqlLoginRefused({ code, sqlState, message });

/** ER_SECURE_TRANSPORT_REQUIRED: what a flexible server (require_secure_transport=ON) says to a client without TLS. */
export function insecureTransport(kind: 'flexible' | 'single'): MySqlLoginRefused {
  if (kind === 'single') return refusal(9002, '28000', 'SSL connection is required. Please specify SSL options and retry.');
  return refusal(3159, 'HY000', 'Connections using insecure transport are prohibited while --require_secure_transport=ON.');
}

/** The single-server gateway routes by the `@server` suffix of the user name. */
export function serverNameMissing(): MySqlLoginRefused {
  return refusal(
    9009,
    '28000',
    'The server name you tried cannot be found. Please check the Username and retry connection. The Username should be in <username@hostname> format.',
  );
}

/** ER_NOT_SUPPORTED_AUTH_MODE: the client cannot switch to the plugin Azure asks for. */
export function authSwitchUnsupported(): MySqlLoginRefused {
  return refusal(1251, '08004', 'Client does not support authentication protocol requested by server; consider upgrading MySQL client');
}

/** ER_ACCESS_DENIED_ERROR, as MySQL words it. */
export function accessDenied(user: string, host: string, usingPassword: boolean): MySqlLoginRefused {
  return refusal(1045, '28000', `Access denied for user '${user}'@'${host}' (using password: ${usingPassword ? 'YES' : 'NO'})`);
}

/** A rejected token: what was wrong when the person can fix it, plain access denied otherwise. */
export function tokenRefused(reason: TokenRejection, user: string, host: string, audience: string): MySqlLoginRefused {
  switch (reason) {
    case 'audience':
      return refusal(1045, '28000', `The access token does not have a valid audience claim. Please acquire a new token for the resource "${audience}".`);
    case 'expired':
      return refusal(1045, '28000', 'The access token has expired. Please acquire a new token and try again.');
    case 'not-yet-valid':
      return refusal(1045, '28000', 'The access token is not yet valid.');
    default:
      return accessDenied(user, host, true);
  }
}

/** ER_HANDSHAKE_ERROR: the login did not finish in time. */
export function handshakeTimedOut(): ErrPacket {
  return { code: 1043, sqlState: '08S01', message: 'Bad handshake' };
}
