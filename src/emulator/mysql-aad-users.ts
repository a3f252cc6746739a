/**
 * Entra principals of the emulated Azure Database for MySQL. Azure has
 * `CREATE AADUSER 'name' IDENTIFIED BY '<client or object id>'`; MariaDB has no such statement, so
 * each principal is a row in `azure_sys.aad_principals` (what the front checks a token against)
 * plus a real MariaDB account the front logs in as, with an internal random password kept in that
 * row. Only the administrator can read `azure_sys`; the password never leaves the emulator.
 */
import { randomBytes } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { ErrPacket } from '../broker/mysql/codec/responses.js';
import { createAadUserErrors, MAX_AAD_USER_NAME, parseCreateAadUser } from './create-aaduser.js';
import type { RealMariaDb } from './real-mariadb.js';

export const AAD_PRINCIPALS_SQL = `
CREATE DATABASE IF NOT EXISTS azure_sys;
CREATE TABLE IF NOT EXISTS azure_sys.aad_principals (
  user_name         VARCHAR(128) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, -- account names are case-sensitive
  -- What IDENTIFIED BY named: a client (application) id or an object id; NULL for a person,
  -- who is matched by sign-in name (the user name itself).
  object_id         VARCHAR(36) NULL,
  object_type       ENUM('user', 'group', 'service') NOT NULL,
  internal_password VARCHAR(64) NOT NULL,
  is_admin          BOOLEAN NOT NULL DEFAULT FALSE -- the server's Entra admin: may CREATE AADUSER
);`;

/**
 * Azure gives the Entra admin "full administrator permissions": all privileges with grant option
 * (so the guide's `GRANT ALL ON \`%\`.*` works), but not SUPER.
 */
async function grantAdmin(db: RealMariaDb, user: string): Promise<void> {
  await db.query("GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION", [user]);
  await db.query("REVOKE SUPER ON *.* FROM ?@'%'", [user]);
}

const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AadUser {
  user: string;
  /** Client id or object id of a service principal or managed identity; absent for a person. */
  identifiedBy?: string;
  type: 'user' | 'group' | 'service';
  /** The server's Entra admin. */
  isAdmin?: boolean;
}

export interface AadPrincipal {
  objectId: string | null;
  objectType: 'user' | 'group' | 'service';
  internalPassword: string;
  isAdmin: boolean;
}

/** Creates `azure_sys` if missing, or brings an older one up to date. Safe to run concurrently and again. */
export async function installAadPrincipals(db: RealMariaDb): Promise<void> {
  await db.query(AAD_PRINCIPALS_SQL);
  const columns = await db.query<RowDataPacket[]>(
    "SELECT 1 FROM information_schema.columns WHERE table_schema = 'azure_sys' AND table_name = 'aad_principals' AND column_name = 'is_admin'",
  );
  if (columns.length === 0) await db.query('ALTER TABLE azure_sys.aad_principals ADD COLUMN IF NOT EXISTS is_admin BOOLEAN NOT NULL DEFAULT FALSE');
}

/**
 * `CREATE AADUSER`, idempotent: the row keeps its password once made, and the account is
 * (re)made to match it, so a second run or a racing one ends in the same state.
 */
export async function createAadUser(db: RealMariaDb, user: AadUser): Promise<void> {
  const objectId = user.identifiedBy?.toLowerCase() ?? null;
  if (objectId !== null && !OBJECT_ID.test(objectId)) {
    throw new RangeError(`"${user.identifiedBy}" is not a valid client or object id`);
  }
  await db.query(
    `INSERT INTO azure_sys.aad_principals (user_name, object_id, object_type, internal_password, is_admin) VALUES (?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE object_id = VALUES(object_id), object_type = VALUES(object_type), is_admin = VALUES(is_admin)`,
    [user.user, objectId, user.type, randomBytes(24).toString('base64url'), user.isAdmin ?? false],
  );
  const principal = await findAadPrincipal(db, user.user);
  if (!principal) throw new Error(`the principal ${user.user} vanished while it was made`);
  await db.query("CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?", [user.user, principal.internalPassword]);
  await db.query("ALTER USER ?@'%' IDENTIFIED BY ?", [user.user, principal.internalPassword]);
  if (user.isAdmin) await grantAdmin(db, user.user);
}

export async function findAadPrincipal(db: RealMariaDb, userName: string): Promise<AadPrincipal | undefined> {
  const rows = await db.query<RowDataPacket[]>(
    'SELECT object_id, object_type, internal_password, is_admin FROM azure_sys.aad_principals WHERE user_name = ?',
    [userName],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { objectId: row.object_id as string | null, objectType: row.object_type as AadPrincipal['objectType'], internalPassword: row.internal_password as string, isAdmin: Boolean(row.is_admin) };
}

/**
 * Runs `CREATE AADUSER` for a session of the principal `caller`, as Azure does: parsed first, then
 * only the server's Entra admin may, and an account that exists is not made again. Resolves with
 * the error to send, or undefined when the principal was made (the client gets an OK).
 */
export async function runCreateAadUser(db: RealMariaDb, sql: string, caller: Pick<AadPrincipal, 'isAdmin'>): Promise<ErrPacket | undefined> {
  const parsed = parseCreateAadUser(sql);
  if (parsed.type === 'other') throw new Error('not a CREATE AADUSER statement');
  if (parsed.type === 'syntax-error') return createAadUserErrors.syntax(parsed.near);
  if (!caller.isAdmin) return createAadUserErrors.notAdmin();
  const { user, identifiedBy } = parsed;
  if (user === '' || user.length > MAX_AAD_USER_NAME) return user === '' ? createAadUserErrors.syntax("''") : createAadUserErrors.nameTooLong(user);
  if (identifiedBy !== undefined && !OBJECT_ID.test(identifiedBy)) return createAadUserErrors.unknownIdentity(identifiedBy);
  const accounts = await db.query<RowDataPacket[]>('SELECT 1 FROM mysql.user WHERE User = ?', [user]);
  if (accounts.length > 0 || (await findAadPrincipal(db, user))) return createAadUserErrors.exists(user);
  await createAadUser(db, { user, ...(identifiedBy ? { identifiedBy } : {}), type: identifiedBy ? 'service' : 'user' });
  return undefined;
}
