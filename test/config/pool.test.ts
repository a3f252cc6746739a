import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { ConfigIssue } from '../../src/config/schema.js';
import { buildConfig, renderConfig } from '../../src/config/generate.js';

const FILE = 'azdb.yaml';
const lines = (...text: string[]): string => `${text.join('\n')}\n`;
const pg = (...pool: string[]) => lines('databases:', '  - name: orders', '    protocol: postgres', '    uri: orders.example:5432', '    pool:', ...pool.map((l) => `      ${l}`));

function errorsOf(text: string): ConfigIssue[] {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).errors];
  }
  throw new Error('expected a ConfigError');
}

describe('pool: in azdb.yaml', () => {
  it('fills in the documented defaults', () => {
    const config = parseConfig(pg('mode: session'), FILE);
    expect(config.databases[0]?.pool).toEqual({
      mode: 'session',
      max_server_connections: 10,
      min_idle: 0,
      idle_timeout: 600,
      server_lifetime: 3_600,
      max_client_wait: 30,
      max_prepared_statements: 200,
    });
  });

  it('leaves a database without pool unpooled', () => {
    const config = parseConfig(lines('databases:', '  - {name: orders, protocol: postgres, uri: "o:5432"}'), FILE);
    expect(config.databases[0]?.pool).toBeUndefined();
  });

  it('reads durations as seconds or with a unit', () => {
    const config = parseConfig(pg('idle_timeout: 90', 'server_lifetime: 250ms', 'max_client_wait: 1.5', 'max_server_connections: 3', 'min_idle: 1'), FILE);
    expect(config.databases[0]?.pool).toMatchObject({ idle_timeout: 90, server_lifetime: 0.25, max_client_wait: 1.5, max_server_connections: 3, min_idle: 1 });
    expect(parseConfig(pg('idle_timeout: 10m', 'server_lifetime: 2h'), FILE).databases[0]?.pool).toMatchObject({ idle_timeout: 600, server_lifetime: 7_200 });
  });

  it('reads transaction mode and max_prepared_statements (0 allowed: prepared statements pin)', () => {
    expect(parseConfig(pg('mode: transaction', 'max_prepared_statements: 0'), FILE).databases[0]?.pool).toMatchObject({ mode: 'transaction', max_prepared_statements: 0 });
    expect(parseConfig(pg('mode: transaction'), FILE).databases[0]?.pool).toMatchObject({ mode: 'transaction', max_prepared_statements: 200 });
  });

  it('takes transaction mode on a mysql database and on a listener', () => {
    const config = parseConfig(lines('databases:', '  - {name: shop, protocol: mysql, uri: "shop:3306", pool: {mode: transaction}}'), FILE);
    expect(config.databases[0]?.pool?.mode).toBe('transaction');
    const listener = parseConfig(lines('databases: [{name: orders, protocol: postgres, uri: "o:5432"}]', 'broker:', '  listeners:', '    - {database: orders, port: 15432, pool: {mode: transaction}}'), FILE);
    expect(listener.broker.listeners[0]?.pool?.mode).toBe('transaction');
  });

  it('refuses a bad mode or max_prepared_statements at its line', () => {
    const [mode] = errorsOf(pg('mode: statement'));
    expect(mode).toMatchObject({ line: 6, path: 'databases[0].pool.mode' });
    const [error] = errorsOf(pg('max_prepared_statements: -1'));
    expect(error).toMatchObject({ line: 6, path: 'databases[0].pool.max_prepared_statements' });
    expect(error!.message).toContain('expected an integer ≥ 0');
  });

  it('says what is wrong with bad values, each at its line', () => {
    const errors = errorsOf(pg('max_server_connections: 0', 'idle_timeout: soon', 'min_idle: -1', 'mood: happy'));
    const byPath = Object.fromEntries(errors.map((e) => [e.path, e]));
    expect(byPath['databases[0].pool.max_server_connections']).toMatchObject({ line: 6, message: 'databases[0].pool.max_server_connections: expected an integer ≥ 1, got the integer 0' });
    expect(byPath['databases[0].pool.idle_timeout']?.line).toBe(7);
    expect(byPath['databases[0].pool.idle_timeout']?.message).toContain('expected a duration');
    expect(byPath['databases[0].pool.min_idle']?.line).toBe(8);
    expect(errors.find((e) => e.message.includes('unknown key "mood"'))?.line).toBe(9);
  });

  it('refuses min_idle above max_server_connections', () => {
    const [error] = errorsOf(pg('max_server_connections: 2', 'min_idle: 3'));
    expect(error).toMatchObject({ line: 7, path: 'databases[0].pool.min_idle' });
    expect(error!.message).toBe('databases[0].pool.min_idle: min_idle (3) cannot exceed max_server_connections (2)');
  });

  it('takes a pool on a mysql database and on a mysql listener', () => {
    const config = parseConfig(
      lines('databases:', '  - name: shop', '    protocol: mysql', '    uri: shop:3306', '    pool: {mode: session}', 'broker:', '  listeners:', '    - {database: shop, port: 13306, pool: {max_server_connections: 2}}'),
      FILE,
    );
    expect(config.databases[0]?.pool?.mode).toBe('session');
    expect(config.broker.listeners[0]?.pool?.max_server_connections).toBe(2);
  });

  it('writes a pool back as it reads it', () => {
    const config = parseConfig(pg('idle_timeout: 250ms', 'max_server_connections: 4'), FILE);
    expect(buildConfig(config).databases[0]?.pool).toEqual(config.databases[0]?.pool);
    const listener = { database: 'orders', port: 15432, pool: { min_idle: 1, server_lifetime: '1h' } };
    const withListener = buildConfig({ databases: [{ name: 'orders', protocol: 'postgres', uri: 'o:5432' }], broker: { listeners: [listener] } });
    expect(withListener.broker.listeners[0]?.pool).toMatchObject({ min_idle: 1, server_lifetime: 3_600 });
    expect(renderConfig(withListener)).toContain('pool:');
  });

  it('takes a listener pool that replaces the database one', () => {
    const config = parseConfig(lines('databases: [{name: orders, protocol: postgres, uri: "o:5432", pool: {max_server_connections: 5}}]', 'broker:', '  listeners:', '    - {database: orders, port: 15432, pool: {max_server_connections: 2}}'), FILE);
    expect(config.broker.listeners[0]?.pool?.max_server_connections).toBe(2);
    expect(config.databases[0]?.pool?.max_server_connections).toBe(5);
  });
});
