/**
 * What the doctor's checks share: the injected dependencies (real ones in the CLI, fakes in
 * tests) and the facts one check hands to the next (the loaded config, the target, whether TCP
 * got through, the token's claims).
 */
import type { Socket } from 'node:net';
import type { AllowedValues } from '../access/index.js';
import type { AuditSink } from '../broker/audit.js';
import type { AccessDecision } from '../broker/session-record.js';
import type { UpstreamTarget } from '../broker/target.js';
import type { AzdbConfig, DatabaseConfig } from '../config/schema.js';
import type { CredsReport } from '../azure/credential-sources.js';
import type { DbSession, SessionOptions } from './db-client.js';
import type { CertificateReport } from './tls-probe.js';
import type { TokenClaims } from '../azure/token-claims.js';

/** What a valid config gives the later checks. */
export interface DoctorSetup {
  configFile: string;
  config: AzdbConfig;
  /** Static databases and, when the config has `discovery:`, the discovered ones. */
  databases: DatabaseConfig[];
  allowed(db: DatabaseConfig): AllowedValues;
  authorize(db: DatabaseConfig): (dbUser: string, dbName: string) => AccessDecision;
  /** A database token of the configured cloud (the process's token cache). */
  getToken(): Promise<string>;
  audit: AuditSink;
}

export interface ClientProgram {
  name: string;
  path: string;
  /** `psql (PostgreSQL) 17.5`, as the program prints it. */
  version: string;
}

export interface DoctorDeps {
  load(): Promise<DoctorSetup>;
  probeCredentials(signal: AbortSignal): Promise<CredsReport>;
  resolveTarget(db: DatabaseConfig): Promise<UpstreamTarget>;
  lookup(host: string, signal: AbortSignal): Promise<string[]>;
  connect(host: string, port: number, signal: AbortSignal): Promise<Socket>;
  probeTls(socket: Socket, target: UpstreamTarget, signal: AbortSignal): Promise<CertificateReport>;
  openSession(options: SessionOptions, signal: AbortSignal): Promise<DbSession>;
  findClient(protocol: 'postgres' | 'mysql', signal: AbortSignal): Promise<ClientProgram | undefined>;
  now(): number;
}

/** Facts gathered so far; each check reads what it needs and adds what it learned. */
export interface DoctorState {
  name: string | undefined;
  /** The login asked for (`--db-user` / `--db-name`). */
  login?: { dbUser?: string; dbName?: string };
  setup?: DoctorSetup;
  db?: DatabaseConfig;
  target?: UpstreamTarget;
  credentialOk?: boolean;
  reachable?: boolean;
  tlsOk?: boolean;
  claims?: TokenClaims;
  tokenOk?: boolean;
}
