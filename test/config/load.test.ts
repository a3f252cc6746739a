import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { ConfigError, formatIssue, loadConfig, parseConfig } from '../../src/config/load.js';
import type { ConfigIssue } from '../../src/config/schema.js';

const FILE = 'azdb.yaml';

const lines = (...text: string[]): string => `${text.join('\n')}\n`;

function errorsOf(text: string): ConfigIssue[] {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).errors];
  }
  throw new Error('expected a ConfigError');
}

/** The only error, with its position and message. */
function onlyError(text: string): ConfigIssue {
  const errors = errorsOf(text);
  expect(errors, JSON.stringify(errors, null, 2)).toHaveLength(1);
  return errors[0]!;
}

const FULL = lines(
  'version: v1',
  'azure:',
  '  cloud: AzureUSGovernment',
  '  resource_manager_endpoint: https://management.usgovcloudapi.net',
  '  managed_identity_client_id: 11111111-2222-3333-4444-555555555555',
  'discovery:',
  '  - types: [postgres, mysql]',
  '    regions: [eastus]',
  'databases:',
  '  - name: orders',
  '    protocol: postgres',
  '    uri: orders.postgres.database.azure.com:5432',
  '    azure: {server_kind: flexible, server_name: orders}',
  '    tls: {mode: verify-full, ca_file: /etc/ssl/azure.pem, server_name: orders.example}',
  '    labels: {env: prod, version: 14}',
  '  - name: legacy',
  '    protocol: mysql',
  '    uri: "[2001:db8::1]:3306"',
  'roles:',
  '  - version: v7',
  '    kind: role',
  '    metadata:',
  '      name: azure-database-access',
  '    spec:',
  '      allow:',
  '        db_labels:',
  "          'engine':",
  '            - "Microsoft.DBforPostgreSQL/flexibleServers"',
  "          env: '^(prod|staging)$'",
  "        db_names: ['*']",
  '        db_users: [teleport]',
  '      deny: {}',
  'broker:',
  '  roles: [azure-database-access]',
  '  listeners:',
  '    - {database: orders, port: 15432, db_user: teleport, db_name: orders}',
  '  audit: {path: /var/log/azdb/audit.log, queries: true}',
  '  http: {address: 127.0.0.1:9464}',
);

describe('parseConfig: valid files', () => {
  it('reads every section and applies defaults', () => {
    const config = parseConfig(FULL, FILE);
    expect(config.version).toBe('v1');
    expect(config.file).toBe(FILE);
    expect(config.azure).toEqual({
      cloud: 'AzureUSGovernment',
      resource_manager_endpoint: 'https://management.usgovcloudapi.net',
      managed_identity_client_id: '11111111-2222-3333-4444-555555555555',
    });
    expect(config.discovery).toEqual([
      {
        types: ['postgres', 'mysql'],
        regions: ['eastus'],
        subscriptions: ['*'],
        resource_groups: ['*'],
        tags: { '*': '*' },
        source: { file: FILE, line: 7, column: 5 },
      },
    ]);
    expect(config.databases[0]).toEqual({
      name: 'orders',
      protocol: 'postgres',
      uri: 'orders.postgres.database.azure.com:5432',
      host: 'orders.postgres.database.azure.com',
      port: 5432,
      azure: { server_kind: 'flexible', server_name: 'orders' },
      tls: { mode: 'verify-full', ca_file: '/etc/ssl/azure.pem', server_name: 'orders.example' },
      // A YAML integer label value is kept as written.
      labels: { env: 'prod', version: '14' },
      source: { file: FILE, line: 10, column: 5 },
    });
    expect(config.databases[1]).toMatchObject({
      name: 'legacy',
      host: '2001:db8::1',
      port: 3306,
      tls: { mode: 'verify-full' },
      labels: {},
    });
    expect(config.databases[1]?.azure).toBeUndefined();
    expect(config.roles).toEqual([
      {
        version: 'v7',
        kind: 'role',
        metadata: { name: 'azure-database-access' },
        spec: {
          allow: {
            db_labels: { engine: ['Microsoft.DBforPostgreSQL/flexibleServers'], env: '^(prod|staging)$' },
            db_names: ['*'],
            db_users: ['teleport'],
          },
          deny: {},
        },
        source: { file: FILE, line: 20, column: 5 },
      },
    ]);
    expect(config.broker).toEqual({
      roles: ['azure-database-access'],
      listeners: [
        {
          database: 'orders',
          host: '127.0.0.1',
          port: 15432,
          db_user: 'teleport',
          db_name: 'orders',
          client_auth: 'password',
          upstream_identity: 'broker',
          disconnect_expired: false,
          source: { file: FILE, line: 36, column: 7 },
        },
      ],
      audit: { path: '/var/log/azdb/audit.log', queries: true, on_failure: 'block' },
      http: { address: '127.0.0.1:9464' },
    });
    expect(config.warnings).toEqual([]);
  });

  it('defaults everything for a file with only a version, and the version itself when absent', () => {
    const expected = {
      version: 'v1',
      azure: { cloud: 'AzureCloud' },
      discovery: [],
      databases: [],
      roles: [],
      broker: { listeners: [], audit: { queries: false, on_failure: 'block' }, http: {} },
      file: FILE,
      warnings: [],
    };
    expect(parseConfig('version: v1\n', FILE)).toEqual(expected);
    expect(parseConfig('databases: []\n', FILE)).toEqual(expected);
    // Absent broker.roles means the built-in allow-all role; an empty list is kept as "nothing".
    expect(parseConfig('broker: {roles: []}\n', FILE).broker.roles).toEqual([]);
  });

  it('keeps a label called __proto__ as a plain label', () => {
    const config = parseConfig(lines('databases:', '  - {name: a, protocol: postgres, uri: "a:1", labels: {__proto__: x}}'), FILE);
    const labels = config.databases[0]?.labels ?? {};
    expect(Object.keys(labels)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
  });

  it('treats an empty value as absent for optional keys', () => {
    const config = parseConfig(lines('version: v1', 'azure:', 'broker:', '  audit:'), FILE);
    expect(config.azure.cloud).toBe('AzureCloud');
    expect(config.broker.audit).toEqual({ queries: false, on_failure: 'block' });
  });

  it('accepts tls.mode insecure and records a warning with its position', () => {
    const config = parseConfig(
      lines('databases:', '  - name: demo', '    protocol: postgres', '    uri: 127.0.0.1:5432', '    tls: {mode: insecure}'),
      FILE,
    );
    expect(config.databases[0]?.tls.mode).toBe('insecure');
    expect(config.warnings).toHaveLength(1);
    expect(config.warnings[0]).toMatchObject({ file: FILE, line: 5, column: 17, path: 'databases[0].tls.mode' });
    expect(config.warnings[0]?.message).toContain('insecure');
    expect(config.warnings[0]?.message).toContain('"demo"');
  });

  it('warns rather than fails on a listener for a database that discovery may find', () => {
    const config = parseConfig(
      lines('discovery:', '  - types: [postgres]', 'broker:', '  listeners:', '    - {database: found-later, port: 15432}'),
      FILE,
    );
    expect(config.broker.listeners[0]?.database).toBe('found-later');
    expect(config.warnings[0]).toMatchObject({ line: 5, column: 18, path: 'broker.listeners[0].database' });
  });

  it('accepts a listener off loopback when it has a password file', () => {
    const config = parseConfig(
      lines(
        'databases: [{name: a, protocol: mysql, uri: "a:3306"}]',
        'broker:',
        '  listeners:',
        '    - {database: a, host: 0.0.0.0, port: 13306, password_file: /run/azdb/pw, cert_file: c.pem, key_file: k.pem}',
      ),
      FILE,
    );
    expect(config.broker.listeners[0]).toMatchObject({ host: '0.0.0.0', password_file: '/run/azdb/pw' });
  });
});

describe('parseConfig: errors name file, line and column', () => {
  it('reports a YAML syntax error', () => {
    const error = onlyError(lines('version: v1', 'databases:', '  - name: orders', '    uri: host: 5432'));
    expect(error).toMatchObject({ file: FILE, line: 4, column: 10, path: '' });
    expect(error.message).toBe('YAML syntax error: Nested mappings are not allowed in compact mappings');
    // An unterminated quote is only noticed where the text ends.
    const quote = onlyError(lines('version: v1', 'databases:', '  - name: "orders', '    protocol: postgres'));
    expect(quote).toMatchObject({ line: 5, column: 1 });
    expect(quote.message).toContain('quote');
  });

  it('reports only the first syntax error of a cascade, with its line and how many followed', () => {
    // One missing } makes the YAML parser report every later line too.
    const error = onlyError(
      lines('version: v1', 'databases:', '  - {name: orders, protocol: postgres, uri: "a:5432"', '  - name: inv', '    protocol: postgres', '    uri: b:5432', 'broker:', '  roles: [d]'),
    );
    expect(error).toMatchObject({ line: 4, column: 3 });
    expect(error.message).toMatch(/^YAML syntax error: Flow map in block collection must be sufficiently indented and end with a \} \(\d+ more syntax errors? after it may come from this one: fix it first\)$/);
  });

  it('reports a duplicate key as a syntax error at the second key', () => {
    const error = onlyError(lines('version: v1', 'azure:', '  cloud: AzureCloud', '  cloud: AzureChinaCloud'));
    expect(error).toMatchObject({ line: 4, column: 3 });
    expect(error.message).toContain('unique');
  });

  it('reports tab indentation', () => {
    expect(onlyError(lines('version: v1', 'azure:', '\tcloud: AzureCloud'))).toMatchObject({ line: 3, column: 1 });
  });

  it('rejects an empty file and a file with only comments', () => {
    for (const text of ['', '\n\n', '# just a comment\n']) {
      const error = onlyError(text);
      expect(error).toMatchObject({ line: 1, column: 1, path: '' });
      expect(error.message).toContain('the file is empty');
    }
  });

  it('rejects a top level that is not a mapping', () => {
    const list = onlyError(lines('- name: orders', '- name: billing'));
    expect(list).toMatchObject({ line: 1, column: 1 });
    expect(list.message).toBe(
      'the top level must be a mapping (version, azure, discovery, databases, roles, broker), got a list',
    );
    expect(onlyError('just text\n').message).toContain('got the string "just text"');
  });

  it('names an unknown key, the allowed keys and the nearest one', () => {
    const error = onlyError(
      lines(
        'databases:',
        '  - name: orders',
        '    protocol: postgres',
        '    protocl: mysql',
        '    uri: orders.postgres.database.azure.com:5432',
      ),
    );
    expect(error).toMatchObject({ line: 4, column: 5, path: 'databases[0]' });
    expect(error.message).toBe(
      'databases[0]: unknown key "protocl". Did you mean "protocol"? Allowed keys: name, protocol, uri, azure, tls, labels, pool',
    );
  });

  it('suggests nothing for an unknown key that is not close to any', () => {
    const error = onlyError(lines('version: v1', 'colour: blue'));
    expect(error).toMatchObject({ line: 2, column: 1 });
    expect(error.message).not.toContain('Did you mean');
    expect(error.message).toContain('Allowed keys: version, azure, discovery, databases, roles, broker');
  });

  it('finds unknown keys deep inside a role', () => {
    const error = onlyError(
      lines('roles:', '  - version: v7', '    kind: role', '    metadata: {name: r}', '    spec:', '      allow: {db_user: [a]}'),
    );
    expect(error).toMatchObject({ line: 6, column: 15, path: 'roles[0].spec.allow' });
    expect(error.message).toContain('Did you mean "db_users"?');
  });

  it('reports wrong types with what was expected', () => {
    const errors = errorsOf(
      lines(
        'azure: [AzureCloud]',
        'discovery: {types: [postgres]}',
        'databases:',
        '  - name: [orders]',
        '    protocol: postgres',
        '    uri: a:5432',
        '    labels: [env]',
        'broker:',
        '  audit: {queries: "yes"}',
        '  listeners:',
        '    - {database: orders, port: "15432"}',
      ),
    );
    expect(errors.map((e) => [e.line, e.column, e.message])).toEqual([
      [1, 8, 'azure: expected a mapping, got a list'],
      [2, 12, 'discovery: expected a list, got a mapping'],
      [4, 11, 'databases[0].name: expected a string, got a list'],
      [7, 13, 'databases[0].labels: expected a mapping, got a list'],
      [9, 20, 'broker.audit.queries: expected a boolean (true or false), got the string "yes"'],
      // No "database orders is not defined": the database's own name was the problem.
      [11, 32, 'broker.listeners[0].port: expected an integer 1..65535, got the string "15432"'],
    ]);
  });

  it('reads broker.audit.on_failure, and names both policies when it is misspelt', () => {
    expect(parseConfig(lines('broker:', '  audit: {path: /tmp/a.jsonl, on_failure: drop}'), FILE).broker.audit).toEqual({ path: '/tmp/a.jsonl', queries: false, on_failure: 'drop' });
    const error = onlyError(lines('broker:', '  audit:', '    on_failure: blocks'));
    expect(error).toMatchObject({ line: 3, column: 17, path: 'broker.audit.on_failure' });
    expect(error.message).toBe('broker.audit.on_failure: expected block or drop, got "blocks"; did you mean "block"?');
  });

  it('reports a bad protocol and suggests the right one', () => {
    const error = onlyError(lines('databases:', '  - name: orders', '    protocol: postgresql', '    uri: a:5432'));
    expect(error).toMatchObject({ line: 3, column: 15, path: 'databases[0].protocol' });
    expect(error.message).toBe('databases[0].protocol: expected postgres or mysql, got "postgresql"; did you mean "postgres"?');
  });

  it('reports bad uris and ports', () => {
    const cases: [string, RegExp][] = [
      ['a.example:0', /port must be an integer 1\.\.65535, got "0"/],
      ['a.example:65536', /port must be an integer 1\.\.65535, got "65536"/],
      ['a.example:54x2', /port must be an integer 1\.\.65535, got "54x2"/],
      ['a.example', /the port is missing/],
      [':5432', /the host is missing/],
      ['"::1:5432"', /put an IPv6 address in brackets/],
      ['"[::1:5432"', /must be closed with "\]"/],
      ['"[::1]"', /the port is missing/],
      ['"[not-ipv6]:5432"', /is not an IPv6 address/],
      ['postgres://a.example:5432', /without a scheme/],
    ];
    for (const [uri, pattern] of cases) {
      const error = onlyError(lines('databases:', '  - name: a', '    protocol: postgres', `    uri: ${uri}`));
      expect(error, uri).toMatchObject({ line: 4, column: 10, path: 'databases[0].uri' });
      expect(error.message, uri).toMatch(pattern);
    }
  });

  it('reports a listener port out of range', () => {
    const error = onlyError(
      lines('databases: [{name: a, protocol: postgres, uri: "a:5432"}]', 'broker:', '  listeners:', '    - database: a', '      port: 70000'),
    );
    expect(error).toMatchObject({ line: 5, column: 13, path: 'broker.listeners[0].port' });
    expect(error.message).toContain('got the integer 70000');
  });

  it('reports a bad cloud', () => {
    const error = onlyError(lines('azure:', '  cloud: AzureGermanCloud'));
    expect(error).toMatchObject({ line: 2, column: 10, path: 'azure.cloud' });
    expect(error.message).toContain('expected one of AzureCloud, AzureUSGovernment, AzureChinaCloud');
    expect(onlyError(lines('azure:', '  cloud: azurecloud')).message).toContain('did you mean "AzureCloud"?');
  });

  it('reports each missing required key at the entry', () => {
    const errors = errorsOf(lines('databases:', '  - labels: {env: prod}'));
    expect(errors.map((e) => [e.line, e.column, e.message])).toEqual([
      [2, 5, 'databases[0]: missing required key "name"'],
      [2, 5, 'databases[0]: missing required key "protocol"'],
      [2, 5, 'databases[0]: missing required key "uri"'],
    ]);
  });

  it('reports a required key left empty at the key', () => {
    const error = onlyError(lines('databases:', '  - name:', '    protocol: mysql', '    uri: a:3306'));
    expect(error).toMatchObject({ line: 2, column: 5 });
    expect(error.message).toBe('databases[0].name: expected a string, got an empty value');
  });

  it('points a duplicate database name at the second one and names the line of the first', () => {
    const error = onlyError(
      lines(
        'databases:',
        '  - name: orders',
        '    protocol: postgres',
        '    uri: a:5432',
        '  - name: orders',
        '    protocol: mysql',
        '    uri: b:3306',
      ),
    );
    expect(error).toMatchObject({ line: 5, column: 11, path: 'databases[1].name' });
    expect(error.message).toBe('databases[1].name: duplicate database name "orders" (first defined at line 2)');
  });

  it('still finds a duplicate name when the entries have other errors', () => {
    const errors = errorsOf(lines('databases:', '  - {name: x, protocol: pg, uri: a:5432}', '  - {name: x, protocol: mysql}'));
    expect(errors.some((e) => e.line === 3 && e.message.includes('duplicate database name "x"'))).toBe(true);
  });

  it('points a duplicate role name at the second one', () => {
    const error = onlyError(
      lines(
        'roles:',
        '  - {version: v7, kind: role, metadata: {name: dev}}',
        '  - version: v7',
        '    kind: role',
        '    metadata:',
        '      name: dev',
      ),
    );
    expect(error).toMatchObject({ line: 6, column: 13, path: 'roles[1].metadata.name' });
    expect(error.message).toContain('duplicate role name "dev" (first defined at line 2)');
  });

  it('reports a role in broker.roles that is not defined', () => {
    const error = onlyError(
      lines('roles:', '  - {version: v7, kind: role, metadata: {name: developers}}', 'broker:', '  roles: [developers, developer]'),
    );
    expect(error).toMatchObject({ line: 4, column: 23, path: 'broker.roles[1]' });
    expect(error.message).toBe(
      'broker.roles[1]: role "developer" is not defined under roles; did you mean "developers"? (defined: developers)',
    );
  });

  it('reports a listener for a database that is not defined', () => {
    const error = onlyError(
      lines(
        'databases: [{name: orders, protocol: postgres, uri: "a:5432"}]',
        'broker:',
        '  listeners:',
        '    - database: ordres',
        '      port: 15432',
      ),
    );
    expect(error).toMatchObject({ line: 4, column: 17, path: 'broker.listeners[0].database' });
    expect(error.message).toContain('database "ordres" is not defined under databases; did you mean "orders"?');
  });

  it('reports unsupported config and role versions', () => {
    const v2 = onlyError('version: v2\n');
    expect(v2).toMatchObject({ line: 1, column: 10, path: 'version' });
    expect(v2.message).toBe('version: unsupported version "v2"; this azdb reads version: v1');
    expect(onlyError('version: 1\n').message).toContain('unsupported version "1"');

    const role = onlyError(lines('roles:', '  - version: v6', '    kind: role', '    metadata: {name: r}'));
    expect(role).toMatchObject({ line: 2, column: 14, path: 'roles[0].version' });
    expect(role.message).toContain('expected v7');
  });

  it('reports a role of another kind and a bad regular expression in db_labels', () => {
    const errors = errorsOf(
      lines(
        'roles:',
        '  - version: v7',
        '    kind: user',
        '    metadata: {name: r}',
        '    spec:',
        "      deny: {db_labels: {env: '^(prod$'}}",
      ),
    );
    expect(errors.map((e) => [e.line, e.column, e.path])).toEqual([
      [3, 11, 'roles[0].kind'],
      [6, 31, 'roles[0].spec.deny.db_labels.env'],
    ]);
    expect(errors[1]?.message).toContain('not a valid regular expression');
  });

  it('checks listener safety: loopback without a password, cert and key together, one endpoint each', () => {
    const errors = errorsOf(
      lines(
        'databases: [{name: a, protocol: postgres, uri: "a:5432"}]',
        'broker:',
        '  listeners:',
        '    - {database: a, host: 0.0.0.0, port: 15432}',
        '    - {database: a, port: 15433, cert_file: c.pem}',
        '    - {database: a, port: 15433}',
        '    - {database: a, host: 10.0.0.4, port: 15434, password_file: /run/pw}',
      ),
    );
    expect(errors.map((e) => [e.line, e.column, e.message])).toEqual([
      [
        4,
        27,
        'broker.listeners[0].host: listener on non-loopback host "0.0.0.0" needs a password_file and a cert_file/key_file for client TLS (without them it must listen on 127.0.0.1 or ::1)',
      ],
      [5, 7, 'broker.listeners[1]: cert_file and key_file go together: give both or neither'],
      [6, 7, 'broker.listeners[2]: 127.0.0.1:15433 is already used by the listener at line 5'],
      [
        7,
        27,
        'broker.listeners[3].host: listener on non-loopback host "10.0.0.4" needs a cert_file/key_file for client TLS (without them it must listen on 127.0.0.1 or ::1)',
      ],
    ]);
  });

  it('requires https for the resource manager endpoint except on loopback', () => {
    const error = onlyError(lines('azure:', '  resource_manager_endpoint: http://arm.example.com'));
    expect(error).toMatchObject({ line: 2, column: 30 });
    expect(error.message).toContain('https://');
    expect(parseConfig(lines('azure:', '  resource_manager_endpoint: http://127.0.0.1:8443'), FILE).azure).toEqual({
      cloud: 'AzureCloud',
      resource_manager_endpoint: 'http://127.0.0.1:8443',
    });
  });

  it('rejects aliases', () => {
    const error = onlyError(
      lines('databases:', '  - name: a', '    protocol: postgres', '    uri: a:5432', '    labels: &l {env: prod}', '  - name: b', '    protocol: postgres', '    uri: b:5432', '    labels: *l'),
    );
    expect(error).toMatchObject({ line: 9, column: 13 });
    expect(error.message).toContain('aliases are not supported');
  });

  it('rejects discovery without types and with unknown types', () => {
    const errors = errorsOf(lines('discovery:', '  - regions: [eastus]', '  - types: [postgres, sqlserver]', '  - types: []'));
    expect(errors.map((e) => [e.line, e.column, e.path])).toEqual([
      [2, 5, 'discovery[0]'],
      [3, 23, 'discovery[1].types[1]'],
      [4, 12, 'discovery[2].types'],
    ]);
    expect(errors[0]?.message).toContain('missing required key "types"');
  });

  it('collects every error, sorted by position, into one message', () => {
    let caught: unknown;
    try {
      parseConfig(
        lines('version: v1', 'azure: {cloud: Mars}', 'databases:', '  - name: a', '    protocol: oracle', '    uri: a'),
        FILE,
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(caught).toBeInstanceOf(UserError);
    const error = caught as ConfigError;
    expect(error.errors.map((e) => `${e.line}:${e.column}`)).toEqual(['2:16', '5:15', '6:10']);
    expect(error.message.split('\n')).toEqual([
      '3 errors in config:',
      ...error.errors.map((e) => `azdb.yaml:${e.line}:${e.column}: ${e.message}`),
    ]);
    expect(formatIssue(error.errors[0]!)).toBe(
      'azdb.yaml:2:16: azure.cloud: expected one of AzureCloud, AzureUSGovernment, AzureChinaCloud, got "Mars"',
    );
    expect(error.hint).toContain('azdb config check');
    expect(error.exitCode).toBe(1);
  });
});

describe('parseConfig: bounded input', () => {
  it('rejects text larger than 1 MiB', () => {
    const error = onlyError(`version: v1\n# ${'x'.repeat(1024 * 1024)}\n`);
    expect(error).toMatchObject({ line: 1, column: 1 });
    expect(error.message).toContain('at most 1 MiB');
  });

  it('rejects more than 10 000 databases and roles', () => {
    const many = (key: string): string => `version: v1\n${key}:\n${'  - {}\n'.repeat(10_001)}`;
    for (const key of ['databases', 'roles']) {
      const error = onlyError(many(key));
      expect(error).toMatchObject({ line: 3, column: 3, path: key });
      expect(error.message).toBe(`${key}: too many entries: 10001; azdb.yaml may list at most 10000 ${key}`);
    }
  });

  it('accepts exactly 10 000 databases', () => {
    const entries = Array.from({ length: 10_000 }, (_, i) => `  - {name: db${i}, protocol: postgres, uri: "h${i}:5432"}`);
    const config = parseConfig(`databases:\n${entries.join('\n')}\n`, FILE);
    expect(config.databases).toHaveLength(10_000);
    expect(config.databases[9_999]).toMatchObject({ name: 'db9999', host: 'h9999', source: { line: 10_001, column: 5 } });
  });

  it('lists at most 50 errors in the message but keeps them all', () => {
    const text = `databases:\n${'  - {name: a, protocol: x, uri: "a:1"}\n'.repeat(60)}`;
    const errors = errorsOf(text);
    // 60 bad protocols, 59 duplicate names.
    expect(errors).toHaveLength(119);
    let message = '';
    try {
      parseConfig(text, FILE);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toHaveLength(52);
    expect(message).toContain('… and 69 more');
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'azdb-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a file and names it in positions', async () => {
    const file = join(dir, 'azdb.yaml');
    await writeFile(file, FULL);
    const config = await loadConfig(file);
    expect(config.file).toBe(file);
    expect(config.databases[0]?.source).toEqual({ file, line: 10, column: 5 });
  });

  it('names the file in errors', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'version: v1\nazure: {cloud: Mars}\n');
    await expect(loadConfig(file)).rejects.toThrow(`${file}:2:16: azure.cloud:`);
  });

  it('says how to create a missing file', async () => {
    const error = await loadConfig(join(dir, 'missing.yaml')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).not.toBeInstanceOf(ConfigError);
    expect((error as UserError).message).toContain('does not exist');
    expect((error as UserError).hint).toContain('azdb config create');
  });

  it('rejects a directory', async () => {
    const sub = join(dir, 'a-directory');
    await mkdir(sub);
    await expect(loadConfig(sub)).rejects.toThrow('is a directory');
  });

  it('rejects a file over 1 MiB without parsing it', async () => {
    const file = join(dir, 'huge.yaml');
    await writeFile(file, Buffer.alloc(2 * 1024 * 1024, 0x61));
    const error = await loadConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).errors[0]).toMatchObject({ file, line: 1, column: 1 });
    expect((error as ConfigError).message).toContain('at most 1 MiB');
  });

  it('rejects a file that is not UTF-8', async () => {
    const file = join(dir, 'latin1.yaml');
    await writeFile(file, Buffer.from([0x76, 0x3a, 0x20, 0xe9, 0x0a]));
    await expect(loadConfig(file)).rejects.toThrow('not valid UTF-8');
  });
});
