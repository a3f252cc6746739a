/**
 * Sample databases of the emulated servers, loaded once into the real PostgreSQL, and the Entra
 * principal of the demo's managed identity, created the way an Entra admin does on Azure.
 */
import type { RealPostgres } from './real-postgres.js';

export interface SampleDatabase {
  name: string;
  sql: string;
}

export const SAMPLE_DATABASES: readonly SampleDatabase[] = [
  {
    name: 'orders',
    sql: `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, placed_at timestamptz NOT NULL DEFAULT now(), status text NOT NULL);
CREATE TABLE order_items (order_id int NOT NULL REFERENCES orders, sku text NOT NULL, quantity int NOT NULL CHECK (quantity > 0), price_cents int NOT NULL, PRIMARY KEY (order_id, sku));
INSERT INTO customers (name, email) SELECT 'Customer ' || g, 'customer' || g || '@example.com' FROM generate_series(1, 50) g;
INSERT INTO orders (customer_id, status) SELECT 1 + (g % 50), (ARRAY['placed','paid','shipped','delivered'])[1 + g % 4] FROM generate_series(1, 200) g;
INSERT INTO order_items SELECT o.id, 'SKU-' || (o.id % 17), 1 + o.id % 3, 499 + (o.id % 7) * 100 FROM orders o;`,
  },
  {
    name: 'inventory',
    sql: `
CREATE TABLE products (sku text PRIMARY KEY, title text NOT NULL, price_cents int NOT NULL);
CREATE TABLE stock (sku text NOT NULL REFERENCES products, warehouse text NOT NULL, quantity int NOT NULL, PRIMARY KEY (sku, warehouse));
INSERT INTO products SELECT 'SKU-' || g, 'Product ' || g, 499 + g * 100 FROM generate_series(0, 16) g;
INSERT INTO stock SELECT p.sku, w, (length(p.sku) * 7 + ascii(w)) % 90 FROM products p, unnest(ARRAY['eastus','westeurope']) w;`,
  },
];

export interface Principal {
  role: string;
  objectId: string;
  type: 'service' | 'user';
  /** The server's Entra admin: may create principals (pgaadauth_*), roles and databases. */
  isAdmin?: boolean;
}

/** Creates sample databases that are missing and grants `principals` access to them. */
export async function loadSampleData(pg: RealPostgres, principals: readonly Principal[]): Promise<void> {
  const { rows } = await pg.query<{ datname: string }>('SELECT datname FROM pg_database');
  const existing = new Set(rows.map((r) => r.datname));
  for (const principal of principals) {
    const found = await pg.query<{ is_admin: boolean }>('SELECT is_admin FROM pgaadauth.principals WHERE rolname = $1', [principal.role]);
    const isAdmin = principal.isAdmin ?? false;
    if (found.rowCount === 0) {
      await pg.query('SELECT pgaadauth_create_principal_with_oid($1, $2, $3, $4, false)', [principal.role, principal.objectId, principal.type, isAdmin]);
    } else if (isAdmin && !found.rows[0]!.is_admin) {
      // Made by an older emulator, before the demo identity became the servers' Entra admin.
      await pg.query('SELECT pgaadauth.make_admin($1)', [principal.role]);
    }
  }
  for (const db of SAMPLE_DATABASES) {
    if (!existing.has(db.name)) {
      await pg.query(`CREATE DATABASE "${db.name}"`);
      await pg.query(db.sql, [], db.name);
    }
    for (const principal of principals) {
      const role = `"${principal.role.replace(/"/g, '""')}"`;
      // The Entra admin may pass on what it has and make schemas, as on Azure where it owns the
      // databases and tables it made.
      const [database, grantable] = principal.isAdmin ? ['CONNECT, TEMPORARY, CREATE', ' WITH GRANT OPTION'] : ['CONNECT, TEMPORARY', ''];
      await pg.query(`GRANT ${database} ON DATABASE "${db.name}" TO ${role}${grantable}`);
      await pg.query(
        `GRANT USAGE, CREATE ON SCHEMA public TO ${role}${grantable}; GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}${grantable}; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}${grantable}`,
        [],
        db.name,
      );
    }
  }
}
