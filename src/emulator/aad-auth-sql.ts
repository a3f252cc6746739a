/**
 * What Azure Database for PostgreSQL installs for Entra authentication, emulated: the
 * `pgaadauth_*` functions create a login role and record which Entra principal it belongs to.
 * The emulator's front reads `pgaadauth.principals` to check a token's identity against the
 * role named in the startup packet, as Azure does with the role's security label.
 *
 * As on Azure, only the server's Entra admins (members of `azure_pg_admin`, made with
 * is_admin = true) may create principals; anyone else gets PostgreSQL's own
 * "permission denied for function". The admin who makes a principal administers its role (ADMIN
 * OPTION without membership, what PostgreSQL 16 gives a CREATEROLE creator), so it may DROP ROLE
 * it, as Azure's docs say, or grant it. Every statement is idempotent, so a cluster made by an
 * older emulator is brought up to date on start.
 */
export const AAD_AUTH_SQL = `
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'azure_pg_admin') THEN
    CREATE ROLE azure_pg_admin NOLOGIN;
  END IF;
END $$;
GRANT pg_monitor, pg_signal_backend TO azure_pg_admin;

CREATE SCHEMA IF NOT EXISTS pgaadauth;
CREATE TABLE IF NOT EXISTS pgaadauth.principals (
  rolname     name PRIMARY KEY,
  object_id   text,
  object_type text NOT NULL CHECK (object_type IN ('user', 'group', 'service')),
  is_admin    boolean NOT NULL DEFAULT false,
  is_mfa      boolean NOT NULL DEFAULT false
);

CREATE OR REPLACE FUNCTION pgaadauth.make_admin(role_name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER ROLE %I CREATEDB CREATEROLE', role_name);
  EXECUTE format('GRANT azure_pg_admin TO %I', role_name);
  UPDATE pgaadauth.principals SET is_admin = true WHERE rolname = role_name;
END $$;

CREATE OR REPLACE FUNCTION pgaadauth.administer(role_name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user) THEN
    EXECUTE format('GRANT %I TO %I WITH ADMIN OPTION, INHERIT FALSE, SET FALSE', role_name, session_user);
  END IF;
END $$;

CREATE OR REPLACE FUNCTION public.pgaadauth_create_principal_with_oid(
  role_name text, object_id text, object_type text, is_admin boolean, is_mfa boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF object_type NOT IN ('user', 'group', 'service') THEN
    RAISE EXCEPTION 'objectType must be one of user, group or service';
  END IF;
  IF object_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    RAISE EXCEPTION 'objectId "%" is not a valid object id', object_id;
  END IF;
  EXECUTE format('CREATE ROLE %I LOGIN', role_name);
  INSERT INTO pgaadauth.principals VALUES (role_name, lower(object_id), object_type, false, is_mfa);
  PERFORM pgaadauth.administer(role_name);
  IF is_admin THEN
    PERFORM pgaadauth.make_admin(role_name);
  END IF;
  RETURN format('Created role for "%s"', role_name);
END $$;

CREATE OR REPLACE FUNCTION public.pgaadauth_create_principal(role_name text, is_admin boolean, is_mfa boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE ROLE %I LOGIN', role_name);
  INSERT INTO pgaadauth.principals VALUES (role_name, NULL, 'user', false, is_mfa);
  PERFORM pgaadauth.administer(role_name);
  IF is_admin THEN
    PERFORM pgaadauth.make_admin(role_name);
  END IF;
  RETURN format('Created role for "%s"', role_name);
END $$;

CREATE OR REPLACE FUNCTION public.pgaadauth_list_principals(is_admin_value boolean)
RETURNS TABLE (rolname name, principal_type text, object_id text, is_admin boolean, is_mfa boolean)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.rolname, p.object_type, p.object_id, p.is_admin, p.is_mfa
  FROM pgaadauth.principals p
  WHERE NOT is_admin_value OR p.is_admin
  ORDER BY p.rolname
$$;

REVOKE ALL ON SCHEMA pgaadauth FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.pgaadauth_create_principal_with_oid(text, text, text, boolean, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.pgaadauth_create_principal(text, boolean, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.pgaadauth_list_principals(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.pgaadauth_create_principal_with_oid(text, text, text, boolean, boolean) TO azure_pg_admin;
GRANT EXECUTE ON FUNCTION public.pgaadauth_create_principal(text, boolean, boolean) TO azure_pg_admin;
GRANT EXECUTE ON FUNCTION public.pgaadauth_list_principals(boolean) TO azure_pg_admin;
`;
