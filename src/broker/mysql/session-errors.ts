/**
 * The ERR packets a MySQL client gets from the broker, with real error codes and SQLSTATEs and a
 * message that says what to do. MySQL's ERR has no hint field, so the advice ends the message.
 */
import { errorMessage, redactSecrets } from '../../errors.js';
import type { UpstreamTarget } from '../target.js';
import { describeRefusal, type ClientTokenRefusal } from '../client-entra.js';
import { UpstreamError } from '../upstream-connect.js';
import { HandshakeTimeoutError, PeerClosedError } from '../wire-reader.js';
import { NetErrorCode, PROTOCOL_ERROR_SQLSTATE, MySqlProtocolError } from './codec/protocol-error.js';
import type { ErrPacket } from './codec/responses.js';

/** An error for the client, already phrased for it. */
export class MySqlClientError extends Error {
  constructor(readonly err: ErrPacket) {
    super(err.message);
    this.name = 'MySqlClientError';
  }
}

/**
 * Error codes the broker sends, all from the server's range (mysqld_error.h): clients show a
 * server's ERR text only for those. A client-range code (2xxx, errmsg.h) from a server makes
 * the mariadb client print "ERROR 2027 (HY000): Received malformed packet" instead.
 */
export enum ErrorCode {
  HandshakeError = 1043, // ER_HANDSHAKE_ERROR
  DbAccessDenied = 1044, // ER_DBACCESS_DENIED_ERROR
  AccessDenied = 1045, // ER_ACCESS_DENIED_ERROR
  SpecificAccessDenied = 1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR
  SecureTransportRequired = 3159, // ER_SECURE_TRANSPORT_REQUIRED
  NotSupportedAuthMode = 1251, // ER_NOT_SUPPORTED_AUTH_MODE
  UnknownError = 1105, // ER_UNKNOWN_ERROR
  /** What a server says when the server behind it (FEDERATED's) cannot be reached. */
  UpstreamUnreachable = 1429, // ER_CONNECT_TO_FOREIGN_DATA_SOURCE
  HostIsBlocked = 1129, // ER_HOST_IS_BLOCKED
}

/** SQLSTATEs: the connection could not be made (TLS refused), or the link to the server failed. */
const CANNOT_CONNECT = '08001';
const LINK_FAILURE = PROTOCOL_ERROR_SQLSTATE;

const err = (code: number, sqlState: string, message: string): MySqlClientError => new MySqlClientError({ code, sqlState, message });
const withHint = (message: string, hint: string | undefined): string => (hint ? `${message}. ${hint}` : message);

export function hostOf(address: string | undefined): string {
  return (address ?? 'unknown').replace(/^::ffff:/, '');
}

export function wrongTunnelPassword(user: string, host: string, usingPassword: boolean): MySqlClientError {
  return err(
    ErrorCode.AccessDenied,
    '28000',
    `Access denied for user '${user}'@'${host}' (using password: ${usingPassword ? 'YES' : 'NO'}). Use the password azdb gave for this tunnel (\`azdb proxy db NAME --json\` prints it); it changes with every tunnel`,
  );
}

/** MySQL's own answer to a host with too many connection errors, here: wrong passwords (the login backoff). */
export function hostBlocked(host: string, retryInSeconds: number): MySqlClientError {
  return err(
    ErrorCode.HostIsBlocked,
    'HY000',
    `Host '${host}' is blocked for ${retryInSeconds} s because of too many failed logins. Wrong passwords from one address are answered ever more slowly; use the password azdb gave for this listener or tunnel`,
  );
}

export function deniedByRoles(user: string, database: string, target: UpstreamTarget, reason: string): MySqlClientError {
  return err(
    ErrorCode.DbAccessDenied,
    '42000',
    `Access denied for user '${user}' to database '${database}' on ${target.name}: your azdb roles deny it (${reason}). Run \`azdb db ls\` to see the database users and names your roles allow`,
  );
}

export function tlsNotOffered(): MySqlClientError {
  return err(
    ErrorCode.HandshakeError,
    LINK_FAILURE,
    "azdb's local listener does not speak TLS (it listens on loopback); connect without SSL, e.g. mysql --skip-ssl or --ssl-mode=DISABLED",
  );
}

/** ER_SECURE_TRANSPORT_REQUIRED, as MySQL answers a plain connection under require_secure_transport. */
/** `client_auth: entra` asks for the token in clear text, which only TLS may carry. */
export function entraNeedsTls(): MySqlClientError {
  return err(
    ErrorCode.SecureTransportRequired,
    'HY000',
    'Connections using insecure transport are prohibited: this azdb listener takes your Entra token as a clear-text password, so only over TLS; connect with --ssl-mode=REQUIRED (better: VERIFY_IDENTITY) and --enable-cleartext-plugin',
  );
}

/** A `client_auth: entra` token refused: MySQL's access denied, with the reason (never the token). */
export function entraRefused(user: string, host: string, reason: ClientTokenRefusal, usingPassword: boolean): MySqlClientError {
  const { message, hint } = describeRefusal(reason, user);
  return err(ErrorCode.AccessDenied, '28000', `Access denied for user '${user}'@'${host}' (using password: ${usingPassword ? 'YES' : 'NO'}): ${message}. ${hint}`);
}

export function changeUserNotForPeople(user: string, host: string): MySqlClientError {
  return err(
    ErrorCode.AccessDenied,
    '28000',
    `Access denied for user '${user}'@'${host}': COM_CHANGE_USER is not taken on a listener where people sign in with Entra (client_auth: entra); open a new connection with your token instead`,
  );
}

export function insecureTransport(): MySqlClientError {
  return err(
    ErrorCode.SecureTransportRequired,
    'HY000',
    'Connections using insecure transport are prohibited: this azdb listener accepts TLS connections only; connect with --ssl-mode=REQUIRED (better: VERIFY_IDENTITY)',
  );
}

export function tokenUnavailable(target: UpstreamTarget, error: unknown): MySqlClientError {
  return err(
    ErrorCode.AccessDenied,
    '28000',
    `azdb could not get an Entra token for ${target.name}: ${errorMessage(error)}. Run \`azdb creds\` to see which credential source works and how to fix the others`,
  );
}

/** A COM_CHANGE_USER larger than the broker reads whole (names and attributes fit easily). */
export function changeUserTooLong(length: number): MySqlClientError {
  return err(NetErrorCode.PacketTooLarge, PROTOCOL_ERROR_SQLSTATE, `COM_CHANGE_USER of ${length} bytes is longer than azdb accepts; send fewer connection attributes`);
}

/** The server no longer offers what the client agreed on from azdb's greeting (the server changed since it was learned). */
export function serverChanged(target: UpstreamTarget, lacking: string): MySqlClientError {
  return err(
    ErrorCode.HandshakeError,
    LINK_FAILURE,
    `${target.name} no longer offers capabilities this connection agreed on (${lacking}): the server changed since azdb last connected to it. Connect again; azdb now greets with what the server offers`,
  );
}

/** An upstream ERR, passed on; access refusals get the Entra advice a person needs. */
export function upstreamRefused(refusal: ErrPacket, target: UpstreamTarget, loginUser: string): MySqlClientError {
  const denied = refusal.code === ErrorCode.AccessDenied || refusal.code === ErrorCode.DbAccessDenied || refusal.sqlState === '28000';
  const hint = denied
    ? `Azure refused the Entra token for '${loginUser}' on ${target.name}: the user must exist for this identity (CREATE AADUSER '${loginUser.split('@')[0]}' IDENTIFIED BY '<client or object id>') and be granted the database. Run \`azdb doctor ${target.name}\``
    : undefined;
  return err(refusal.code, refusal.sqlState ?? 'HY000', withHint(redactSecrets(refusal.message), hint));
}

/** Any failure talking to the upstream server before relaying. */
export function upstreamFailure(error: unknown, target: UpstreamTarget): MySqlClientError {
  const where = `${target.host}:${target.port}`;
  if (error instanceof MySqlClientError) return error;
  if (error instanceof UpstreamError) {
    switch (error.stage) {
      case 'connect':
        return err(ErrorCode.UpstreamUnreachable, LINK_FAILURE, withHint(`Can't connect to MySQL server on '${where}' (${error.message})`, error.hint));
      case 'tls':
        return err(ErrorCode.UpstreamUnreachable, CANNOT_CONNECT, withHint(`SSL connection error: ${error.message}`, error.hint));
      case 'auth':
        return err(ErrorCode.NotSupportedAuthMode, '08004', withHint(error.message, error.hint));
      default:
        return err(NetErrorCode.ReadError, LINK_FAILURE, withHint(error.message, error.hint));
    }
  }
  if (error instanceof PeerClosedError) {
    return err(NetErrorCode.ReadError, LINK_FAILURE, `Lost connection to MySQL server ${target.name} at '${where}' during login. Run \`azdb doctor ${target.name}\``);
  }
  if (error instanceof HandshakeTimeoutError) {
    return err(NetErrorCode.ReadInterrupted, LINK_FAILURE, `Lost connection to MySQL server ${target.name} at '${where}': ${error.message}. Run \`azdb doctor ${target.name}\``);
  }
  if (error instanceof MySqlProtocolError) return err(NetErrorCode.ReadError, LINK_FAILURE, `${target.name} broke the MySQL protocol: ${error.message}`);
  return err(ErrorCode.UpstreamUnreachable, LINK_FAILURE, `Can't connect to MySQL server on '${where}' (${errorMessage(error)}). Run \`azdb doctor ${target.name}\``);
}

/** A failure on the client's side of the login, or undefined when the client is gone. */
export function clientFailure(error: unknown): MySqlClientError | undefined {
  if (error instanceof MySqlClientError) return error;
  if (error instanceof MySqlProtocolError) return err(error.errorCode, PROTOCOL_ERROR_SQLSTATE, `Got an error reading communication packets: ${error.message}`);
  if (error instanceof HandshakeTimeoutError) return err(ErrorCode.HandshakeError, PROTOCOL_ERROR_SQLSTATE, `Bad handshake: ${error.message}; closing the connection`);
  if (error instanceof PeerClosedError) return undefined;
  return err(ErrorCode.UnknownError, 'HY000', `azdb broker error: ${errorMessage(error)}`);
}
