/**
 * Sample data of the emulated MySQL servers, loaded into the real MariaDB, and the Entra
 * principals granted to it, made the way an Entra admin does on Azure (`CREATE AADUSER`).
 * Every statement is idempotent, so reuse and concurrent loads end in the same state.
 */
import { createAadUser, installAadPrincipals, type AadUser } from './mysql-aad-users.js';
import type { RealMariaDb } from './real-mariadb.js';

export const MYSQL_SAMPLE_DATABASE = 'shop';

const SHOP_SQL = `
CREATE DATABASE IF NOT EXISTS shop;
CREATE TABLE IF NOT EXISTS shop.customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS shop.products (sku VARCHAR(20) PRIMARY KEY, title VARCHAR(100) NOT NULL, price_cents INT NOT NULL);
CREATE TABLE IF NOT EXISTS shop.orders (
  id INT PRIMARY KEY, customer_id INT NOT NULL, sku VARCHAR(20) NOT NULL, quantity INT NOT NULL, status VARCHAR(20) NOT NULL,
  FOREIGN KEY (customer_id) REFERENCES shop.customers (id), FOREIGN KEY (sku) REFERENCES shop.products (sku));
INSERT IGNORE INTO shop.customers SELECT seq, CONCAT('Customer ', seq), CONCAT('customer', seq, '@example.com') FROM shop.seq_1_to_50;
INSERT IGNORE INTO shop.products SELECT CONCAT('SKU-', seq), CONCAT('Product ', seq), 499 + seq * 100 FROM shop.seq_0_to_16;
INSERT IGNORE INTO shop.orders
  SELECT seq, 1 + seq % 50, CONCAT('SKU-', seq % 17), 1 + seq % 3, ELT(1 + seq % 4, 'placed', 'paid', 'shipped', 'delivered') FROM shop.seq_1_to_200;`;

/** Creates what is missing of the sample data and grants `principals` all of it. */
export async function loadMySqlSampleData(db: RealMariaDb, principals: readonly AadUser[]): Promise<void> {
  await installAadPrincipals(db);
  await db.query(SHOP_SQL);
  for (const principal of principals) {
    await createAadUser(db, principal);
    await db.query(`GRANT ALL PRIVILEGES ON \`${MYSQL_SAMPLE_DATABASE}\`.* TO ?@'%'`, [principal.user]);
  }
}
