/**
 * Entra principals of the emulated Azure Database for MySQL. Azure has
 * `CREATE AADUSER 'name' IDENTIFIED BY '<client or object id>'`; MariaDB has no such statement, so
 * each principal is a row in `azure_sys.aad_principals` (what the front checks a token against)
 * plus a real MariaDB account the front logs in as, with an internal random password kept in that
 * row. Only the administrator can read `azure_sys`; the password never leaves the emulator.
 */
import { randomBytes } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { RealMariaDb } from './real-mariadb.js';

export const AAD_PRINCIPALS_SQL = `
CREATE DATABASE IF NOT EXISTS azure_sys;
CREATE TABLE IF NOT EXISTS azure_sys.aad_principals (
  user_name         VARCHAR(128) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, -- account names are case-sensitive
  -- What IDENTIFIED BY named: a client (application) id or an object id; NULL for a person,
  -- who is matched by sign-in name (the user name itself).
  object_id         VARCHAR(36) NULL,
  object_type       ENUM('user', 'group', 'service') NOT NULL,
  internal_password VARCHAR(64) NOT NULL
);`;

export interface AadUser {
  user: string;
  /** Client id or object id of a service principal or managed identity; absent for a person. */
  identifiedBy?: string;
  type: 'user' | 'group' | 'service';
}

export interface AadPrincipal {
  objectId: string | null;
  objectType: 'user' | 'group' | 'service';
  internalPassword: string;
}

/** Creates `azure_sys` if missing. Safe to run concurrently and again. */
export async function installAadPrincipals(db: RealMariaDb): Promise<void> {
  await db.query(AAD_PRINCIPALS_SQL);
}

/**
 * `CREATE AADUSER`, idempotent: the row keeps its password once made, and the account is
 * (re)made to match it, so a second run or a racing one ends in the same state.
 */
export async function createAadUser(db: RealMariaDb, user: AadUser): Promise<void> {
  const objectId = user.identifiedBy?.toLowerCase() ?? null;
  if (objectId !== null && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(objectId)) {
    throw new RangeError(`"${user.identifiedBy}" is not a valid client or object id`);
  }
  await db.query(
    `INSERT INTO azure_sys.aad_principals (user_name, object_id, object_type, internal_password) VALUES (?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE object_id = VALUES(object_id), object_type = VALUES(object_type)`,
    [user.user, objectId, user.type, randomBytes(24).toString('base64url')],
  );
  const principal = await findAadPrincipal(db, user.user);
  if (!principal) throw new Error(`the principal ${user.user} vanished while it was made`);
  await db.query("CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?", [user.user, principal.internalPassword]);
  await db.query("ALTER USER ?@'%' IDENTIFIED BY ?", [user.user, principal.internalPassword]);
}

export async function findAadPrincipal(db: RealMariaDb, userName: string): Promise<AadPrincipal | undefined> {
  const rows = await db.query<RowDataPacket[]>(
    'SELECT object_id, object_type, internal_password FROM azure_sys.aad_principals WHERE user_name = ?',
    [userName],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { objectId: row.object_id as string | null, objectType: row.object_type as AadPrincipal['objectType'], internalPassword: row.internal_password as string };
}
