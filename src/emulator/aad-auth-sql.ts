/**
 * What Azure Database for PostgreSQL installs for Entra authentication, emulated: the
 * `pgaadauth_*` functions create a login role and record which Entra principal it belongs to.
 * The emulator's front reads `pgaadauth.principals` to check a token's identity against the
 * role named in the startup packet, as Azure does with the role's security label.
 */
export const AAD_AUTH_SQL = `
CREATE SCHEMA pgaadauth;
CREATE TABLE pgaadauth.principals (
  rolname     name PRIMARY KEY,
  object_id   text,
  object_type text NOT NULL CHECK (object_type IN ('user', 'group', 'service')),
  is_admin    boolean NOT NULL DEFAULT false,
  is_mfa      boolean NOT NULL DEFAULT false
);

CREATE FUNCTION public.pgaadauth_create_principal_with_oid(
  role_name text, object_id text, object_type text, is_admin boolean, is_mfa boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF object_type NOT IN ('user', 'group', 'service') THEN
    RAISE EXCEPTION 'objectType must be one of user, group or service';
  END IF;
  IF object_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    RAISE EXCEPTION 'objectId "%" is not a valid object id', object_id;
  END IF;
  EXECUTE format('CREATE ROLE %I LOGIN', role_name);
  IF is_admin THEN
    EXECUTE format('ALTER ROLE %I CREATEDB CREATEROLE', role_name);
    EXECUTE format('GRANT pg_monitor, pg_signal_backend TO %I', role_name);
  END IF;
  INSERT INTO pgaadauth.principals VALUES (role_name, lower(object_id), object_type, is_admin, is_mfa);
  RETURN format('Created role for "%s"', role_name);
END $$;

CREATE FUNCTION public.pgaadauth_create_principal(role_name text, is_admin boolean, is_mfa boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  EXECUTE format('CREATE ROLE %I LOGIN', role_name);
  IF is_admin THEN
    EXECUTE format('ALTER ROLE %I CREATEDB CREATEROLE', role_name);
  END IF;
  INSERT INTO pgaadauth.principals VALUES (role_name, NULL, 'user', is_admin, is_mfa);
  RETURN format('Created role for "%s"', role_name);
END $$;

CREATE FUNCTION public.pgaadauth_list_principals(is_admin_value boolean)
RETURNS TABLE (rolname name, principal_type text, object_id text, is_admin boolean, is_mfa boolean)
LANGUAGE sql SECURITY DEFINER AS $$
  SELECT p.rolname, p.object_type, p.object_id, p.is_admin, p.is_mfa
  FROM pgaadauth.principals p
  WHERE NOT is_admin_value OR p.is_admin
  ORDER BY p.rolname
$$;

REVOKE ALL ON SCHEMA pgaadauth FROM PUBLIC;
`;
