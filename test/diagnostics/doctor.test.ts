import { describe, expect, it } from 'vitest';
import { Socket } from 'node:net';
import { parseConfig } from '../../src/config/load.js';
import { allowedValues, BUILTIN_LOCAL_ROLE } from '../../src/access/index.js';
import { NO_AUDIT } from '../../src/broker/audit.js';
import type { UpstreamTarget } from '../../src/broker/target.js';
import { runDoctor, type DoctorDeps, type DoctorOptions } from '../../src/diagnostics/doctor.js';
import type { CredsReport } from '../../src/azure/credential-sources.js';
import type { CertificateReport } from '../../src/diagnostics/tls-probe.js';
import type { DbSession } from '../../src/diagnostics/db-client.js';
import { ConfigError } from '../../src/config/load.js';

const OID = '5d1e0f7a-3b2c-4d8e-9f10-a1b2c3d4e5f6';
const APP = '0b6c3a5e-7f1d-4c2a-9e8b-1d2c3b4a5f60';

function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(claims)}.c2ln`;
}
const NOW = Date.parse('2026-01-01T00:00:00Z');
const GOOD_TOKEN = jwt({ aud: 'https://ossrdbms-aad.database.windows.net', tid: 't', oid: OID, appid: APP, exp: NOW / 1000 + 3600, idtyp: 'app' });

const CONFIG = parseConfig(
  `version: v1
databases:
  - name: orders
    protocol: postgres
    uri: orders.postgres.database.azure.com:5432
  - name: shop
    protocol: mysql
    uri: shop.mysql.database.azure.com:3306
roles:
  - version: v7
    kind: role
    metadata: {name: dev}
    spec:
      allow: {db_labels: {'*': '*'}, db_users: [app], db_names: ['*']}
      deny: {}
broker:
  roles: [dev]
`,
  'azdb.yaml',
);

const CREDS_OK: CredsReport = {
  ok: true,
  used: 'ManagedIdentityCredential',
  scope: 'x',
  summary: '',
  sources: [{ name: 'ManagedIdentityCredential', ok: true, detail: 'token', hint: '', stopsChain: false, excluded: false }],
};

const CERT: CertificateReport = {
  tlsVersion: 'TLSv1.3',
  subject: 'orders.postgres.database.azure.com',
  altNames: ['orders.postgres.database.azure.com'],
  issuer: 'Microsoft Azure RSA TLS Issuing CA 03',
  validFrom: new Date(NOW - 86_400_000),
  validTo: new Date(NOW + 90 * 86_400_000),
  chainError: undefined,
  nameError: undefined,
};

const never = <T>(signal: AbortSignal): Promise<T> => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));

function fakeSession(protocol: 'postgres' | 'mysql'): DbSession {
  return { protocol, user: 'app', database: 'postgres', query: async () => ({ rows: [{ who: 'app', version: 'PostgreSQL 17.5 on x86_64' }] }), close: async () => {} };
}

function deps(overrides: Partial<DoctorDeps> = {}): DoctorDeps & { sessionsOpened: number } {
  const state = { sessionsOpened: 0 };
  const base: DoctorDeps = {
    load: async () => ({
      configFile: 'azdb.yaml',
      config: CONFIG,
      databases: CONFIG.databases,
      allowed: (db) => allowedValues(CONFIG.roles, { name: db.name, labels: db.labels, protocol: db.protocol }),
      authorize: () => () => ({ allowed: true }),
      getToken: async () => GOOD_TOKEN,
      audit: NO_AUDIT,
    }),
    probeCredentials: async () => CREDS_OK,
    resolveTarget: async (db): Promise<UpstreamTarget> => ({
      name: db.name,
      protocol: db.protocol,
      host: db.host,
      port: db.port,
      tls: { mode: 'verify-full', caSource: 'the system CAs', serverName: db.host },
      serverKind: 'flexible',
    }),
    lookup: async () => ['10.0.0.4'],
    connect: async () => new Socket(),
    probeTls: async () => CERT,
    openSession: async (options) => {
      state.sessionsOpened++;
      return fakeSession(options.target.protocol);
    },
    findClient: async () => ({ name: 'psql', path: '/usr/bin/psql', version: 'psql (PostgreSQL) 17.5' }),
    now: () => NOW,
  };
  return Object.assign(state, base, overrides);
}

const signal = new AbortController().signal;
const statuses = (report: { checks: Array<{ id: string; status: string }> }) => Object.fromEntries(report.checks.map((c) => [c.id, c.status]));

async function doctor(options: DoctorOptions, d: DoctorDeps) {
  return runDoctor(options, d, signal);
}

describe('doctor with fakes', () => {
  it('passes every check on a healthy database and logs in once', async () => {
    const d = deps();
    const seen: string[] = [];
    const report = await runDoctor({ name: 'orders' }, d, signal, (c) => seen.push(c.id));
    expect(statuses(report)).toEqual({ config: 'pass', credential: 'pass', dns: 'pass', tcp: 'pass', tls: 'pass', token: 'pass', login: 'pass', client: 'pass' });
    expect(seen).toEqual(['config', 'credential', 'dns', 'tcp', 'tls', 'token', 'login', 'client']);
    expect(report.ok).toBe(true);
    expect(d.sessionsOpened).toBe(1);
    for (const check of report.checks) expect(Object.keys(check)).toEqual(['id', 'title', 'status', 'detail', 'hint']);
  });

  it('without a name checks the config and the credential and lists the databases', async () => {
    const report = await doctor({}, deps());
    expect(statuses(report)).toEqual({ config: 'pass', credential: 'pass', databases: 'pass' });
    expect(report.checks[2]!.detail).toContain('orders (postgres, orders.postgres.database.azure.com:5432)');
  });

  it('resolves and names the TCP check when the connect never completes', async () => {
    const report = await doctor({ name: 'orders', limits: { tcp: 50 } }, deps({ connect: (_h, _p, s) => never(s) }));
    const tcp = report.checks.find((c) => c.id === 'tcp')!;
    expect(tcp.status).toBe('fail');
    expect(tcp.detail).toContain('within 0.1 s');
    expect(tcp.hint).toMatch(/firewall/i);
    expect(statuses(report)).toMatchObject({ tls: 'skip', login: 'skip' });
    expect(report.ok).toBe(false);
  });

  it('names the TLS check when the server accepts and never answers', async () => {
    const report = await doctor({ name: 'orders', limits: { tls: 50 } }, deps({ probeTls: (_s, _t, signal) => never(signal) }));
    const tls = report.checks.find((c) => c.id === 'tls')!;
    expect(tls.status).toBe('fail');
    expect(tls.detail).toContain('did not answer the SSLRequest');
    expect(statuses(report)).toMatchObject({ tcp: 'pass', login: 'skip' });
  });

  it('stays within its budget when every check hangs, skipping what is left', async () => {
    let now = NOW;
    const hang = <T>(s: AbortSignal) => never<T>(s);
    const d = deps({ probeCredentials: hang, lookup: (_h, s) => hang(s), connect: (_h, _p, s) => hang(s), now: () => now });
    const clock = setInterval(() => (now += 1000), 5);
    try {
      const report = await doctor({ name: 'orders', budgetMs: 3_000, limits: { credential: 40, dns: 40, tcp: 40 } }, d);
      expect(report.checks.map((c) => c.id)).toEqual(['config', 'credential', 'dns', 'tcp', 'tls', 'token', 'login', 'client']);
      expect(report.checks.find((c) => c.id === 'credential')!.status).toBe('fail');
      expect(report.checks.some((c) => c.status === 'skip' && c.detail.includes('budget'))).toBe(true);
    } finally {
      clearInterval(clock);
    }
  });

  it('tells a refused port from a dropped one', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const report = await doctor({ name: 'orders' }, deps({ connect: async () => Promise.reject(refused) }));
    const tcp = report.checks.find((c) => c.id === 'tcp')!;
    expect(tcp.detail).toContain('refused');
    expect(tcp.hint).not.toMatch(/firewall/i);
  });

  it('explains an expired certificate, a wrong name and an unknown chain', async () => {
    const expired = await doctor({ name: 'orders' }, deps({ probeTls: async () => ({ ...CERT, validTo: new Date(NOW - 1000), chainError: 'CERT_HAS_EXPIRED' }) }));
    expect(expired.checks.find((c) => c.id === 'tls')!.detail).toContain('expired on');
    const wrongName = await doctor({ name: 'orders' }, deps({ probeTls: async () => ({ ...CERT, altNames: ['other.example'], nameError: "Hostname/IP does not match certificate's altnames" }) }));
    const tls = wrongName.checks.find((c) => c.id === 'tls')!;
    expect(tls.detail).toContain('does not carry the name "orders.postgres.database.azure.com": it is for other.example');
    expect(tls.hint).toContain('tls.server_name');
    expect(tls.hint).toContain('e.g. orders.postgres.database.azure.com.');
    const chain = await doctor({ name: 'orders' }, deps({ probeTls: async () => ({ ...CERT, chainError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }) }));
    expect(chain.checks.find((c) => c.id === 'tls')!.hint).toContain('DigiCert Global Root G2');
    expect(chain.checks.find((c) => c.id === 'tls')!.hint).toContain('tls.ca_file');
  });

  it('gives the SQL that creates the missing Entra principal, for PostgreSQL and MySQL', async () => {
    const pgRefusal = Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' });
    const pgReport = await doctor({ name: 'orders' }, deps({ openSession: async () => Promise.reject(pgRefusal) }));
    const pgLogin = pgReport.checks.find((c) => c.id === 'login')!;
    expect(pgLogin.status).toBe('fail');
    expect(pgLogin.hint).toContain(`select * from pgaadauth_create_principal_with_oid('app', '${OID}', 'service', false, false);`);
    const myRefusal = Object.assign(new Error("Access denied for user 'app'@'127.0.0.1' (using password: YES)"), { errno: 1045, sqlState: '28000' });
    const myReport = await doctor({ name: 'shop' }, deps({ openSession: async () => Promise.reject(myRefusal) }));
    expect(myReport.checks.find((c) => c.id === 'login')!.hint).toContain(`CREATE AADUSER 'app' IDENTIFIED BY '${APP}';`);
  });

  it('tells a user without rights on the database from a missing principal (MySQL 1044, PostgreSQL 42501)', async () => {
    const myNoGrant = Object.assign(new Error("Access denied for user 'app'@'%' to database 'shop'"), { errno: 1044, sqlState: '42000' });
    const my = (await doctor({ name: 'shop' }, deps({ openSession: async () => Promise.reject(myNoGrant) }))).checks.find((c) => c.id === 'login')!;
    expect(my.hint).toContain('app exists but may not use this database');
    expect(my.hint).not.toContain('CREATE AADUSER');
    const pgNoConnect = Object.assign(new Error('permission denied for database "orders"'), { code: '42501' });
    const pg = (await doctor({ name: 'orders' }, deps({ openSession: async () => Promise.reject(pgNoConnect) }))).checks.find((c) => c.id === 'login')!;
    expect(pg.hint).toContain('azdb setup');
  });

  it('fails the token check for the wrong audience and a server of another cloud', async () => {
    const wrongAud = jwt({ aud: 'https://management.azure.com', oid: OID, appid: APP, exp: NOW / 1000 + 3600 });
    const base = deps();
    const report = await doctor({ name: 'orders' }, deps({ load: async () => ({ ...(await base.load()), getToken: async () => wrongAud }) }));
    const token = report.checks.find((c) => c.id === 'token')!;
    expect(token.status).toBe('fail');
    expect(token.detail).toContain('https://management.azure.com');
    expect(statuses(report).login).toBe('skip');
    const gov = parseConfig('version: v1\ndatabases:\n  - {name: gov, protocol: postgres, uri: gov.postgres.database.usgovcloudapi.net:5432}\n', 'azdb.yaml');
    const govReport = await doctor({ name: 'gov' }, deps({ load: async () => ({ ...(await base.load()), config: gov, databases: gov.databases, allowed: () => allowedValues([BUILTIN_LOCAL_ROLE], { name: 'gov', labels: {}, protocol: 'postgres' }) }) }));
    expect(govReport.checks.find((c) => c.id === 'token')!.hint).toContain('azure.cloud: AzureUSGovernment');
  });

  it('names the wrong-audience refusal of the server in the login check', async () => {
    const refusal = Object.assign(new Error('The access token does not have a valid audience claim. Please acquire a new token for the resource "https://ossrdbms-aad.database.windows.net".'), { code: '28000' });
    const report = await doctor({ name: 'orders' }, deps({ openSession: async () => Promise.reject(refusal) }));
    expect(report.checks.find((c) => c.id === 'login')!.hint).toContain('audience');
  });

  it('skips the database checks after a bad config, and a failing credential skips the token', async () => {
    const bad = await doctor({ name: 'orders' }, deps({ load: async () => Promise.reject(new ConfigError([{ file: 'azdb.yaml', line: 3, column: 1, path: 'x', message: 'unknown key "x"' }])) }));
    expect(statuses(bad)).toEqual({ config: 'fail', credential: 'pass', dns: 'skip', tcp: 'skip', tls: 'skip', token: 'skip', login: 'skip', client: 'skip' });
    expect(bad.checks[0]!.detail).toContain('azdb.yaml:3:1');
    const noCreds = await doctor({ name: 'orders' }, deps({ probeCredentials: async () => ({ ...CREDS_OK, ok: false, used: null, summary: 'no credential source yields a token', sources: [] }) }));
    expect(statuses(noCreds)).toMatchObject({ credential: 'fail', token: 'skip', login: 'skip' });
    expect(noCreds.checks[1]!.hint).toContain('azdb creds');
  });

  it('reports an unknown database name with the known ones', async () => {
    const report = await doctor({ name: 'nope' }, deps());
    expect(report.checks[0]!.status).toBe('fail');
    expect(report.checks[0]!.hint).toContain('orders, shop');
  });

  it('turns a check that throws into a fail naming it', async () => {
    const report = await doctor({ name: 'orders' }, deps({ lookup: async () => { throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }); }, findClient: async () => { throw new Error('boom'); } }));
    expect(report.checks.find((c) => c.id === 'dns')!.detail).toContain('does not resolve');
    expect(report.checks.find((c) => c.id === 'client')!.detail).toContain('the check itself failed: boom');
  });

  it('checks the psql version for SCRAM and the SSL SYSCALL case', async () => {
    const old = await doctor({ name: 'orders' }, deps({ findClient: async () => ({ name: 'psql', path: '/opt/psql', version: 'psql (PostgreSQL) 9.6.24' }) }));
    expect(old.checks.find((c) => c.id === 'client')!.status).toBe('fail');
    const current = await doctor({ name: 'orders' }, deps());
    expect(current.checks.find((c) => c.id === 'client')!.hint).toContain('SSL SYSCALL');
  });
});
