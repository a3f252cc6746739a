/**
 * Step 4: azdb.yaml for what the answers chose: `discovery:` for the servers' types, regions and
 * subscriptions, or, when the config in use reaches every chosen server at an address of its own
 * (their Azure names would not reach them), those servers as static entries. Never overwrites
 * without being asked.
 */
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { serverTypesFor } from '../../../azure/discovery-servers.js';
import { buildConfig, renderConfig, starterConfig, STARTER_ROLE_NAME } from '../../../config/generate.js';
import { formatIssue, loadConfig } from '../../../config/load.js';
import type { ConfigInput, DatabaseInput } from '../../../config/schema.js';
import { AzdbError, errorMessage } from '../../../errors.js';
import type { SetupAnswers, StepReport } from '../../api/setup.js';
import { chosenTypes } from '../artifacts.js';
import { knownAddress } from '../basis.js';
import { stepReport, type SetupContext } from '../context.js';
import { chosenServers, discoveryConfig } from '../servers.js';

export async function writeConfig(sc: SetupContext, answers: SetupAnswers, options: { overwrite: boolean; keepExisting?: boolean }, signal: AbortSignal): Promise<StepReport> {
  const { configFile } = sc;
  const exists = await access(configFile).then(
    () => true,
    () => false,
  );
  const { input, listsServers } = await configInput(sc, answers, signal);
  const text = renderConfig(input, {
    header: [
      'azdb configuration, written by `azdb setup`.',
      listsServers
        ? `Its servers are listed by the addresses ${sc.basis.source ?? 'the config in use'} reaches them at (not their Azure names).`
        : 'discovery: needs the azdb-discovery role (setup step 2); roles: who may log in as which database user.',
      'Check it with `azdb config check`, then list what it finds with `azdb db ls`.',
    ].join('\n'),
  });
  if (exists && !options.overwrite) {
    // What setup would write now is there already (setup wrote it before, and it was resumed).
    if ((await readFile(configFile, 'utf8').catch(() => undefined)) === text) return checked(configFile, `${configFile} is as setup wrote it`);
    if (options.keepExisting) return checked(configFile, `kept the existing ${configFile}`);
    return { ...stepReport('config', 'fail', `${configFile} already exists`, 'Overwrite it? y replaces it, n keeps it (and checks it).'), exists: true };
  }
  buildConfig(input, configFile);
  await mkdir(dirname(configFile), { recursive: true });
  await writeFile(configFile, text, { mode: 0o644 });
  return checked(configFile, `wrote ${configFile}`);
}

async function checked(configFile: string, what: string): Promise<StepReport> {
  const artifacts = [{ label: 'config', path: configFile }];
  try {
    const config = await loadConfig(configFile);
    const warnings = config.warnings.map(formatIssue);
    return stepReport('config', 'pass', `${what}; config check OK (${config.databases.length} databases, ${config.discovery.length} discovery entries, ${config.roles.length} roles)`, '', [...warnings, `next: azdb --config ${configFile} db ls`], artifacts);
  } catch (error) {
    return stepReport('config', 'fail', `${what}; config check failed: ${errorMessage(error)}`, error instanceof AzdbError && error.hint ? error.hint : '', [], artifacts);
  }
}

async function configInput(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal): Promise<{ input: ConfigInput; listsServers: boolean }> {
  const types = chosenTypes(answers);
  const starter = starterConfig({ dbUser: answers.dbUser || 'teleport' });
  const role = { ...starter.roles![0]!, spec: { allow: { ...starter.roles![0]!.spec!.allow!, db_labels: { engine: serverTypesFor(types).map((t) => t.type) } } } };
  const azure = {
    cloud: sc.basis.cloud,
    ...(sc.basis.armEndpoint ? { resource_manager_endpoint: sc.basis.armEndpoint } : {}),
    ...(sc.basis.managedIdentityClientId ? { managed_identity_client_id: sc.basis.managedIdentityClientId } : {}),
  };
  const servers = await chosenServers(sc, answers, signal);
  if (servers.length === 0 || !servers.every((db) => knownAddress(sc.basis, db))) {
    const discovery = discoveryConfig(sc, answers).discovery.map(({ types: t, regions, subscriptions, resource_groups, tags }) => ({ types: t, regions, subscriptions, resource_groups, tags }));
    return { input: { version: 'v1', azure, discovery, roles: [role], broker: { roles: [STARTER_ROLE_NAME] } }, listsServers: false };
  }
  const databases: DatabaseInput[] = servers.map((db) => ({
    name: db.name,
    protocol: db.protocol,
    uri: db.uri,
    ...(db.azure ? { azure: { ...db.azure } } : {}),
    tls: { mode: db.tls.mode, ...(db.tls.ca_file ? { ca_file: db.tls.ca_file } : {}), ...(db.tls.server_name ? { server_name: db.tls.server_name } : {}) },
    labels: { ...db.labels },
  }));
  return { input: { version: 'v1', azure, databases, roles: [role], broker: { roles: [STARTER_ROLE_NAME] } }, listsServers: true };
}
