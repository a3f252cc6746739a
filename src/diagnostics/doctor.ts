/**
 * `azdb doctor [NAME]`: the checks in order, each under its own time limit and all under one
 * budget, so the doctor ends (and says which check timed out) even when every host black-holes.
 * A check whose prerequisite failed is reported as `skip` with the reason. Results stream out one
 * by one (`doctor()`, for the TUI's doctor screen) or come back together (`runDoctor()`).
 */
import { formatSeconds, result, runCheck, type CheckResult } from './check.js';
import type { DoctorDeps, DoctorState } from './doctor-types.js';
import { checkClient } from './checks/client.js';
import { checkLogin, checkToken, loginTimeout } from './checks/login.js';
import { checkDns, checkTcp, tcpTimeout } from './checks/network.js';
import { checkConfig, checkCredential, checkDatabases } from './checks/setup.js';
import { checkTls, tlsTimeout } from './checks/tls.js';

export type { DoctorDeps, DoctorSetup, DoctorState, ClientProgram } from './doctor-types.js';

export interface DoctorOptions {
  /** The database to check; without it only the config and the credential (and the list). */
  name?: string;
  /** The login to try (`--db-user` / `--db-name`), else what `azdb db connect` would pick. */
  login?: { dbUser?: string; dbName?: string };
  /** The whole doctor's time budget. @default 14_000 */
  budgetMs?: number;
  /** Time limits per check id (ms), over the defaults. */
  limits?: Partial<Record<CheckId, number>>;
}

export type CheckId = 'config' | 'credential' | 'databases' | 'dns' | 'tcp' | 'tls' | 'token' | 'login' | 'client';

export const CHECK_TITLES: Readonly<Record<CheckId, string>> = {
  config: 'Config file',
  credential: 'Entra credential',
  databases: 'Databases',
  dns: 'DNS resolve',
  tcp: 'TCP connect',
  tls: 'TLS and certificate',
  token: 'Token audience',
  login: 'Login through the broker',
  client: 'Client program',
};

export const DEFAULT_LIMITS: Readonly<Record<CheckId, number>> = {
  // Includes ARM discovery when the config has `discovery:`.
  config: 5_000,
  credential: 6_000,
  databases: 1_000,
  dns: 2_000,
  tcp: 3_000,
  tls: 3_000,
  token: 4_000,
  login: 6_000,
  client: 2_000,
};

export const DEFAULT_BUDGET_MS = 14_000;
/** Less than this left of the budget: later checks are skipped rather than started. */
const MIN_SLICE_MS = 250;

interface Step {
  id: CheckId;
  /** Why the step cannot run, or undefined when it can. */
  blocked: (state: DoctorState) => string | undefined;
  run: (state: DoctorState, deps: DoctorDeps, signal: AbortSignal) => Promise<CheckResult>;
  onTimeout?: (state: DoctorState) => (limitMs: number) => { detail: string; hint: string };
}

const needsConfig = (s: DoctorState) => (s.setup ? undefined : 'needs a valid config');
const needsDatabase = (s: DoctorState) => needsConfig(s) ?? (s.db ? undefined : 'needs the database in the config');

const STEPS_WITHOUT_NAME: Step[] = [
  { id: 'config', blocked: () => undefined, run: checkConfig },
  { id: 'credential', blocked: () => undefined, run: checkCredential, onTimeout: credentialTimeout },
  { id: 'databases', blocked: needsConfig, run: checkDatabases },
];

const STEPS_WITH_NAME: Step[] = [
  { id: 'config', blocked: () => undefined, run: checkConfig },
  { id: 'credential', blocked: () => undefined, run: checkCredential, onTimeout: credentialTimeout },
  { id: 'dns', blocked: needsDatabase, run: checkDns },
  { id: 'tcp', blocked: needsDatabase, run: checkTcp, onTimeout: tcpTimeout },
  { id: 'tls', blocked: (s) => needsDatabase(s) ?? (s.reachable ? undefined : 'needs a TCP connection'), run: checkTls, onTimeout: tlsTimeout },
  { id: 'token', blocked: (s) => needsDatabase(s) ?? (s.credentialOk ? undefined : 'needs a working credential'), run: checkToken },
  {
    id: 'login',
    blocked: (s) => needsDatabase(s) ?? (!s.tlsOk ? 'needs a verified TLS connection' : !s.tokenOk ? 'needs a token for the database' : undefined),
    run: checkLogin,
    onTimeout: loginTimeout,
  },
  { id: 'client', blocked: needsDatabase, run: checkClient },
];

function credentialTimeout() {
  return (limitMs: number) => ({
    detail: `probing the credential sources did not finish within ${formatSeconds(limitMs)}`,
    hint: 'Run `azdb creds` to see which source hangs (an identity endpoint or the Azure CLI).',
  });
}

/** The checks `doctor()` reports, in order (with NAME: the database's; without: the config's). */
export function doctorCheckIds(name?: string): CheckId[] {
  return (name === undefined ? STEPS_WITHOUT_NAME : STEPS_WITH_NAME).map((step) => step.id);
}

/** The checks as they finish, in order. */
export async function* doctor(options: DoctorOptions, deps: DoctorDeps, signal: AbortSignal): AsyncGenerator<CheckResult> {
  const state: DoctorState = { name: options.name, ...(options.login ? { login: options.login } : {}) };
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const deadline = deps.now() + (options.budgetMs ?? DEFAULT_BUDGET_MS);
  for (const step of options.name === undefined ? STEPS_WITHOUT_NAME : STEPS_WITH_NAME) {
    const title = CHECK_TITLES[step.id];
    const blocked = step.blocked(state);
    if (blocked) {
      yield result(step.id, title, 'skip', `not run: ${blocked}`);
      continue;
    }
    const left = deadline - deps.now();
    if (left < MIN_SLICE_MS || signal.aborted) {
      yield result(step.id, title, 'skip', signal.aborted ? 'not run: the doctor was stopped' : 'not run: the doctor\'s time budget is used up by the checks above');
      continue;
    }
    yield await runCheck(
      { id: step.id, title, limitMs: Math.min(limits[step.id], left), ...(step.onTimeout ? { onTimeout: step.onTimeout(state) } : {}) },
      step.run,
      state,
      deps,
      signal,
    );
  }
}

export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

/** All checks; `onResult` sees each as it finishes. `ok` is false when any check failed. */
export async function runDoctor(options: DoctorOptions, deps: DoctorDeps, signal: AbortSignal, onResult: (check: CheckResult) => void = () => {}): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  for await (const check of doctor(options, deps, signal)) {
    checks.push(check);
    onResult(check);
  }
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}
