/** Doctor checks that need no database: the config, the credential chain, the database list. */
import { errorMessage, AzdbError } from '../../errors.js';
import { result, type CheckResult } from '../check.js';
import { describeClaims } from '../../azure/token-claims.js';
import type { DoctorDeps, DoctorState } from '../doctor-types.js';

export async function checkConfig(state: DoctorState, deps: DoctorDeps): Promise<CheckResult> {
  const title = 'Config file';
  try {
    const setup = await deps.load();
    state.setup = setup;
    const { config } = setup;
    const summary = `${setup.configFile}: ${setup.databases.length} databases, ${config.roles.length} roles, cloud ${config.azure.cloud}`;
    if (state.name !== undefined) {
      const db = setup.databases.find((d) => d.name === state.name);
      if (!db) {
        const names = setup.databases.map((d) => d.name).sort();
        return result('config', title, 'fail', `${summary}; no database named "${state.name}"`, names.length > 0 ? `Known databases: ${names.join(', ')}.` : 'Add it under `databases:` in the config.');
      }
      state.db = db;
    }
    if (config.warnings.length > 0) {
      return result('config', title, 'warn', `${summary}; ${config.warnings.length} warning(s): ${config.warnings.map((w) => `line ${w.line}: ${w.message}`).join('; ')}`, 'Run `azdb config check` for every warning with its line.');
    }
    return result('config', title, 'pass', summary);
  } catch (error) {
    const hint = error instanceof AzdbError && error.hint ? error.hint : 'Run `azdb config check`.';
    return result('config', title, 'fail', errorMessage(error), hint);
  }
}

export async function checkCredential(state: DoctorState, deps: DoctorDeps, signal: AbortSignal): Promise<CheckResult> {
  const title = 'Entra credential';
  const report = await deps.probeCredentials(signal);
  state.credentialOk = report.ok;
  if (report.ok) {
    const used = report.sources.find((s) => s.name === report.used);
    return result('credential', title, 'pass', `DefaultAzureCredential uses ${report.used}${used?.claims ? `: ${describeClaims(used.claims)}` : ''}`);
  }
  const failing = report.sources.filter((s) => !s.ok && !s.excluded && !s.notTried).map((s) => `${s.name}: ${s.detail}`);
  return result('credential', title, 'fail', `${report.summary} (${failing.join('; ')})`, 'Run `azdb creds` for each source\'s reason and fix.');
}

export async function checkDatabases(state: DoctorState): Promise<CheckResult> {
  const title = 'Databases';
  const databases = state.setup?.databases ?? [];
  if (databases.length === 0) {
    return result('databases', title, 'warn', 'no databases: none in the config and none discovered', 'Add databases under `databases:` or configure discovery; then `azdb doctor NAME` checks one.');
  }
  const list = databases.map((d) => `${d.name} (${d.protocol}, ${d.uri})`).join(', ');
  return result('databases', title, 'pass', `${databases.length}: ${list}`, 'Run `azdb doctor NAME` to check the network, TLS and login of one.');
}
