/**
 * The contract between the core and the setup wizard (src/ui/wizard) and plain `azdb setup`:
 * the five steps of the guide, the answers, the step reports and the API object. Types and
 * constants only, so the wizard's reducer loads nothing of the core.
 */
import type { WizardProgress } from '../../config/user-state.js';

export type { WizardProgress };

export const STEP_IDS = ['credentials', 'iam', 'users', 'config', 'connect'] as const;
export type StepId = (typeof STEP_IDS)[number];

export const STEP_TITLES: Readonly<Record<StepId, string>> = {
  credentials: 'Credentials',
  iam: 'IAM role for discovery',
  users: 'Database users',
  config: 'Broker config',
  connect: 'Connect',
};

/** What the user chose; strings, as the user-state store keeps them. */
export interface SetupAnswers {
  /** `postgres,mysql` */
  types: string;
  /** `*` or `eastus,westeurope` */
  regions: string;
  /** `*` (all listed) or ids, comma-separated. */
  subscriptions: string;
  /** The Entra database user the broker logs in as. */
  dbUser: string;
  /** What that user may do: one of {@link PRIVILEGE_LEVELS}. */
  privilege: string;
  /** PostgreSQL databases the user will use, comma-separated. */
  pgDatabases: string;
  /** MySQL databases the user will use, comma-separated. */
  mysqlDatabases: string;
  /** The server's Entra admin (a person's sign-in name or a group), to run the SQL as. */
  adminUser: string;
  /** Servers to set up, comma-separated; '' = every server discovery finds. */
  servers: string;
}

export const ANSWER_KEYS: ReadonlyArray<keyof SetupAnswers> = ['types', 'regions', 'subscriptions', 'dbUser', 'privilege', 'pgDatabases', 'mysqlDatabases', 'adminUser', 'servers'];

/**
 * What step 3 grants the database user, the same way on both engines, on the databases named for
 * each engine only (never `*.*`).
 */
export const PRIVILEGE_LEVELS = ['read-only', 'read-write', 'owner'] as const;
export type PrivilegeLevel = (typeof PRIVILEGE_LEVELS)[number];
export const DEFAULT_PRIVILEGE: PrivilegeLevel = 'read-only';

export const PRIVILEGE_DESCRIPTIONS: Readonly<Record<PrivilegeLevel, string>> = {
  'read-only': 'read every table (PostgreSQL: schema public, now and later; MySQL: db.*)',
  'read-write': 'read-only + insert, update and delete rows (and use sequences)',
  owner: 'read-write + create and drop tables: in its own schema (PostgreSQL), in the database (MySQL)',
};

/** The answer as a level; anything else (an old or hand-edited answer) is the default. */
export function privilegeLevel(answer: string): PrivilegeLevel {
  return (PRIVILEGE_LEVELS as readonly string[]).includes(answer) ? (answer as PrivilegeLevel) : DEFAULT_PRIVILEGE;
}

export interface Artifact {
  label: string;
  path: string;
}

export interface StepReport {
  step: StepId;
  status: 'pass' | 'fail';
  detail: string;
  hint: string;
  /** Explanations and the commands / SQL to paste, one per line. */
  lines: string[];
  artifacts: Artifact[];
  /** Only `config`: the file exists and was not written (ask before overwriting). */
  exists?: boolean;
}

export interface SetupApi {
  readonly configFile: string;
  readonly artifactDir: string;
  /** One line about where this runs (real Azure, or the demo's emulated Azure). */
  environmentNote(): Promise<string>;
  defaults(): Promise<SetupAnswers>;
  loadProgress(): WizardProgress | undefined;
  saveProgress(progress: WizardProgress): void;
  checkCredentials(signal: AbortSignal): Promise<StepReport>;
  checkIam(answers: SetupAnswers, signal: AbortSignal): Promise<StepReport>;
  checkUsers(answers: SetupAnswers, signal: AbortSignal): Promise<StepReport>;
  /** Runs the principal SQL on each chosen server as `answers.adminUser`, then checks as checkUsers. */
  runPrincipalSql(answers: SetupAnswers, signal: AbortSignal): Promise<StepReport>;
  /** Writes azdb.yaml; an existing file only with `overwrite` (else `exists: true` and its check). */
  writeConfig(answers: SetupAnswers, options: { overwrite: boolean; keepExisting?: boolean }, signal: AbortSignal): Promise<StepReport>;
  checkConnect(answers: SetupAnswers, signal: AbortSignal): Promise<StepReport>;
  close(): Promise<void>;
}

