/**
 * The core of `azdb setup`: one function per step of the guide (credentials, IAM role, database
 * users, broker config, connect), each a live check that returns a {@link StepReport} and writes
 * its artifacts under `$AZDB_STATE_DIR/setup/`. The wizard (src/ui/wizard) and the plain / --json
 * mode call only this interface; tests inject a fake. Nothing here prints, and no file it writes
 * holds a token or a secret (exports.sh carries a placeholder for the client secret).
 *
 * Against `azdb demo`: when the shell sourced the running demo's env.sh (same IDENTITY_ENDPOINT),
 * the emulated ARM (and its CA) is used for discovery, and the config written lists the emulated
 * servers by their local addresses (their Azure names do not resolve here) instead of `discovery:`.
 */
import { chmod, mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CLOUDS, databaseScope, type CloudName } from '../../azure/clouds.js';
import { createAzureCliCredential, createCredential } from '../../azure/credential.js';
import { discover, type DiscoveredDatabase } from '../../azure/discovery.js';
import { normalizeRegion, serverTypesFor } from '../../azure/discovery-servers.js';
import { TokenCache } from '../../azure/token-cache.js';
import { NO_AUDIT } from '../../broker/audit.js';
import { resolveTarget } from '../../broker/resolve-target.js';
import { DEFAULT_MYSQL_DB_NAME, DEFAULT_POSTGRES_DB_NAME } from '../../access/index.js';
import { buildConfig, renderConfig, starterConfig, STARTER_ROLE_NAME } from '../../config/generate.js';
import { formatIssue, loadConfig } from '../../config/load.js';
import { resolveConfigPath, resolveStateDir } from '../../config/paths.js';
import type { AzdbConfig, ConfigInput, DatabaseConfig, DatabaseInput } from '../../config/schema.js';
import { createUserStateStore, type UserStateStore } from '../../config/user-state.js';
import { runCheck, type CheckResult } from '../../diagnostics/check.js';
import { checkLogin } from '../../diagnostics/checks/login.js';
import { probeCredentials, type CredsDeps, type SourceResult } from '../../azure/credential-sources.js';
import { REAL_CREDS_DEPS } from '../../diagnostics/credential-advice.js';
import { openSession, serverError } from '../../diagnostics/db-client.js';
import { runDoctor } from '../../diagnostics/doctor.js';
import type { DoctorSetup, DoctorState } from '../../diagnostics/doctor-types.js';
import { realDoctorDeps } from '../../diagnostics/real-deps.js';
import type { TokenClaims } from '../../azure/token-claims.js';
import { AzdbError, errorMessage } from '../../errors.js';
import { which } from '../../process/exec.js';
import { SILENT_LOG, type CoreContext } from '../context.js';
import { loadRuntime, type Runtime } from '../runtime.js';
import { AdminLoginFailed, openAdminSession, runPrincipalStatements, type AdminTokenSource } from './admin-sql.js';
import type { Artifact, SetupAnswers, SetupApi, StepId, StepReport } from '../api/setup.js';
import { adminCommand, chosenTypes, discoveryRole, parseList, principalSql, roleCommands, ROLE_NAME, SUBSCRIPTION_READ } from './artifacts.js';

interface DemoEnvironment {
  armEndpoint: string;
  caPem: string;
  databases: DatabaseConfig[];
  dbUser: string | undefined;
}

interface Identity {
  source: string;
  claims: TokenClaims | undefined;
}

export interface SetupApiOptions {
  store?: UserStateStore;
  credsDeps?: CredsDeps;
}

export async function createSetupApi(ctx: CoreContext, options: SetupApiOptions = {}): Promise<SetupApi> {
  const configFile = resolve(resolveConfigPath({ flag: ctx.configFlag, env: ctx.env, homedir: homedir() }));
  const stateDir = resolveStateDir(ctx.env, homedir(), process.getuid?.());
  const artifactDir = join(stateDir, 'setup');
  const store = options.store ?? createUserStateStore({ cwd: stateDir });
  const credsDeps = options.credsDeps ?? REAL_CREDS_DEPS;
  const cloud: CloudName = 'AzureCloud';
  const demo = await detectDemo(ctx.env, stateDir);
  const tokens = new TokenCache({ credential: createCredential({ cloud }, ctx.env) });
  const scope = databaseScope(CLOUDS[cloud]);
  /** The admin's token: the person's Azure CLI login first when `az` is here, then DefaultAzureCredential. */
  const adminTokenSources = async (): Promise<AdminTokenSource[]> => {
    const sources: AdminTokenSource[] = [];
    if (await which('az', ctx.env)) {
      const cli = new TokenCache({ credential: createAzureCliCredential() });
      sources.push({ name: 'Azure CLI', getToken: () => cli.getToken(scope) });
    }
    sources.push({ name: 'DefaultAzureCredential', getToken: () => tokens.getToken(scope) });
    return sources;
  };

  let identity: Identity | undefined;
  let servers: { key: string; list: DiscoveredDatabase[] } | undefined;
  const runtimes: Runtime[] = [];

  const artifact = async (name: string, text: string, mode = 0o644): Promise<string> => {
    await mkdir(artifactDir, { recursive: true, mode: 0o700 });
    const path = join(artifactDir, name);
    await writeFile(path, text, { mode });
    await chmod(path, mode);
    return path;
  };
  const report = (step: StepId, status: 'pass' | 'fail', detail: string, hint = '', lines: string[] = [], artifacts: Artifact[] = []): StepReport => ({
    step,
    status,
    detail,
    hint,
    lines,
    artifacts,
  });

  const probe = async (signal: AbortSignal) => {
    const result = await probeCredentials({ cloud, env: ctx.env }, credsDeps, signal);
    const used = result.sources.find((s) => s.name === result.used);
    identity = used ? { source: used.name, claims: used.claims } : undefined;
    return result;
  };
  const ensureIdentity = async (signal: AbortSignal): Promise<Identity | undefined> => identity ?? (await probe(signal), identity);

  const armConfig = (answers: SetupAnswers): AzdbConfig => {
    const types = chosenTypes(answers);
    const subs = parseList(answers.subscriptions);
    const regions = parseList(answers.regions);
    const input = starterConfig({
      ...(types.includes('postgres') ? { postgresRegion: regions[0] ?? '*' } : {}),
      ...(types.includes('mysql') ? { mysqlRegion: regions[0] ?? '*' } : {}),
      ...(subs.length === 1 ? { subscription: subs[0]! } : {}),
      dbUser: answers.dbUser || 'teleport',
    });
    input.discovery = (input.discovery ?? []).map((m) => ({ ...m, regions: regions.length > 0 ? regions.map((r) => (r === '*' ? r : normalizeRegion(r))) : ['*'], subscriptions: subs.length > 0 ? subs : ['*'] }));
    if (demo) input.azure = { ...input.azure, resource_manager_endpoint: demo.armEndpoint };
    return buildConfig(input, configFile);
  };

  const listServers = async (answers: SetupAnswers, signal: AbortSignal) => {
    const config = armConfig(answers);
    const result = await discover({ config, tokens, signal, ...(demo ? { ca: demo.caPem } : {}) });
    servers = { key: JSON.stringify([answers.types, answers.regions, answers.subscriptions]), list: result.databases };
    return result;
  };
  const ensureServers = async (answers: SetupAnswers, signal: AbortSignal): Promise<DiscoveredDatabase[]> => {
    const key = JSON.stringify([answers.types, answers.regions, answers.subscriptions]);
    if (!servers || servers.key !== key) await listServers(answers, signal);
    return servers?.list ?? [];
  };
  /** The chosen servers as the broker reaches them (the demo's local addresses in demo mode). */
  const chosenServers = async (answers: SetupAnswers, signal: AbortSignal): Promise<DatabaseConfig[]> => {
    const wanted = parseList(answers.servers);
    const list = (await ensureServers(answers, signal)).filter((db) => wanted.length === 0 || wanted.includes(db.name));
    return list.map((db) => {
      const local = demo?.databases.find((d) => d.name === (db.azure?.server_name ?? db.name) && d.protocol === db.protocol);
      return local ? { ...db, uri: local.uri, host: local.host, port: local.port, tls: local.tls } : db;
    });
  };

  const subscriptionsFor = async (answers: SetupAnswers, signal: AbortSignal): Promise<string[]> => {
    const given = parseList(answers.subscriptions).filter((s) => s !== '*');
    if (given.length > 0) return given;
    const fromServers = (await ensureServers(answers, signal).catch(() => [])).map((db) => db.labels['subscription-id']).filter((s): s is string => Boolean(s));
    if (fromServers.length > 0) return [...new Set(fromServers)];
    return ctx.env.AZURE_SUBSCRIPTION_ID ? [ctx.env.AZURE_SUBSCRIPTION_ID] : ['<subscription-id>'];
  };

  const loginCheck = async (db: DatabaseConfig, dbUser: string, signal: AbortSignal): Promise<CheckResult> => {
    const config = buildConfig({ version: 'v1', azure: { cloud } }, configFile);
    const dbName = db.protocol === 'postgres' ? DEFAULT_POSTGRES_DB_NAME : DEFAULT_MYSQL_DB_NAME;
    const setup: DoctorSetup = {
      configFile,
      config,
      databases: [db],
      allowed: () => ({ dbUsers: [dbUser], dbNames: [dbName], deniedUsers: [], deniedNames: [] }),
      authorize: () => () => ({ allowed: true }),
      getToken: () => tokens.getToken(scope),
      audit: NO_AUDIT,
    };
    const deps = realDoctorDeps({ load: async () => setup, probeCredentials: async () => { throw new Error('not used'); } }, ctx.env);
    try {
      const target = await resolveTarget(db);
      const state: DoctorState = { name: db.name, setup, db, target, ...(identity?.claims ? { claims: identity.claims } : {}) };
      return await runCheck({ id: 'login', title: 'Login through the broker', limitMs: 10_000 }, checkLogin, state, deps, signal);
    } catch (error) {
      return { id: 'login', title: 'Login through the broker', status: 'fail', detail: errorMessage(error), hint: error instanceof AzdbError && error.hint ? error.hint : '' };
    }
  };

  const usersReport = async (answers: SetupAnswers, signal: AbortSignal, before: string[] = []): Promise<StepReport> => {
    const who = await ensureIdentity(signal);
    const dbUser = answers.dbUser || 'teleport';
    const dbs = await chosenServers(answers, signal);
    if (dbs.length === 0) {
      return report('users', 'fail', 'no servers to set up: discovery found none for the types, regions and subscriptions of step 2', 'Go back to step 2 (b) and check its listing, or clear the servers field.');
    }
    const sql: string[] = [];
    const commands: string[] = [];
    const sqlFile = join(artifactDir, 'principals.sql');
    for (const db of dbs) {
      sql.push(`-- ${db.name} (${db.protocol}, ${db.labels['engine'] ?? db.uri})`, ...principalSql(db.protocol, dbUser, who?.claims), '');
      commands.push(`# ${db.name}: ${adminCommand(db, answers.adminUser || '<entra-admin>', sqlFile)}`);
    }
    const paths = [await artifact('principals.sql', `${sql.join('\n')}\n`), await artifact('principals-commands.sh', `# Run the SQL as each server's Entra admin (the token is the password; never stored)\n${commands.join('\n')}\n`)];
    const results = await Promise.all(dbs.map((db) => loginCheck(db, dbUser, signal)));
    const failed = results.filter((r) => r.status === 'fail');
    const lines = [
      ...before,
      `identity: ${who ? `${who.source}, object id ${who.claims?.objectId ?? '?'}, client id ${who.claims?.appId ?? '?'}` : 'none (step 1 failed): the SQL has placeholders'}`,
      ...sql.filter((l) => l !== '' && !l.startsWith('-- As') && !l.startsWith('-- Only')),
      ...results.map((r, i) => `${r.status === 'pass' ? 'ok  ' : 'FAIL'} ${dbs[i]!.name}: ${r.detail}`),
    ];
    const artifacts = [{ label: 'SQL', path: paths[0]! }, { label: 'commands', path: paths[1]! }];
    if (failed.length > 0) {
      return report('users', 'fail', `${failed.length} of ${dbs.length} server(s) refuse ${dbUser}`, `${failed[0]!.hint || 'Run the SQL as the Entra admin.'} Press x to run it as the Entra admin "${answers.adminUser || '(set the admin field)'}", or run ${paths[1]} yourself, then r.`, lines, artifacts);
    }
    return report('users', 'pass', `${dbUser} logs in through the broker on ${dbs.map((d) => d.name).join(', ')}`, '', lines, artifacts);
  };

  const runtimeFor = async (): Promise<Runtime> => {
    const rt = await loadRuntime({ ...ctx, configFlag: configFile, log: SILENT_LOG });
    runtimes.push(rt);
    return rt;
  };

  return {
    configFile,
    artifactDir,
    async environmentNote() {
      return demo
        ? `Emulated Azure of \`azdb demo\` (ARM ${demo.armEndpoint}); the config lists its servers by local address.`
        : `Azure (${cloud}); config ${configFile}`;
    },
    async defaults() {
      return { types: 'postgres,mysql', regions: '*', subscriptions: '*', dbUser: demo?.dbUser ?? 'teleport', adminUser: demo?.dbUser ?? '', servers: '' };
    },
    loadProgress: () => store.wizardProgress(),
    saveProgress: (progress) => store.saveWizardProgress(progress),

    async checkCredentials(signal) {
      const result = await probe(signal);
      const env = ctx.env;
      const az = await which('az', env);
      const detected = [
        `managed identity: ${env.IDENTITY_ENDPOINT ? `identity endpoint ${env.IDENTITY_ENDPOINT}` : env.MSI_ENDPOINT ? `MSI endpoint ${env.MSI_ENDPOINT}` : 'IMDS (only on an Azure VM)'}`,
        `service principal env: ${['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET'].map((n) => `${n} ${env[n] ? 'set' : 'unset'}`).join(', ')}`,
        `Azure CLI: ${az ? az : 'not installed'}`,
      ];
      const sourceLine = (s: SourceResult) => `${s.ok ? 'ok  ' : s.excluded ? 'skip' : 'FAIL'} ${s.name}: ${s.ok ? 'yields a token' : s.detail}`;
      const claims = identity?.claims;
      const exportsText = [
        '# Service principal for DefaultAzureCredential (EnvironmentCredential). Fill in the secret yourself:',
        '# azdb never writes it. Keep this file private.',
        `export AZURE_TENANT_ID=${claims?.tenantId ?? env.AZURE_TENANT_ID ?? '<tenant-id>'}`,
        `export AZURE_CLIENT_ID=${env.AZURE_CLIENT_ID ?? claims?.appId ?? '<application-client-id>'}`,
        "export AZURE_CLIENT_SECRET='<client-secret>'",
        '',
      ].join('\n');
      const exportsFile = await artifact('exports.sh', exportsText, 0o600);
      const explain = result.used
        ? `DefaultAzureCredential tries the sources in this order and uses the first that yields a token: ${result.used}.`
        : `DefaultAzureCredential gets no token: ${result.summary}.`;
      const lines = [...detected, ...result.sources.map(sourceLine), explain, ...exportsText.split('\n').filter((l) => l.startsWith('export'))];
      if (!result.ok) {
        const firstHint = result.sources.find((s) => !s.ok && !s.excluded && s.hint)?.hint ?? '';
        return report('credentials', 'fail', `no credential source yields a token (${result.summary})`, `${firstHint} On an Azure VM prefer a managed identity; for a service principal fill in and source ${exportsFile}.`, lines, [{ label: 'exports', path: exportsFile }]);
      }
      return report(
        'credentials',
        'pass',
        `DefaultAzureCredential uses ${result.used}: object id ${claims?.objectId ?? '?'}, client id ${claims?.appId ?? '?'}, tenant ${claims?.tenantId ?? '?'}`,
        '',
        lines,
        [{ label: 'exports', path: exportsFile }],
      );
    },

    async checkIam(answers, signal) {
      const who = await ensureIdentity(signal);
      const types = chosenTypes(answers);
      const result = await listServers(answers, signal);
      const subs = await subscriptionsFor(answers, signal);
      const roleFile = await artifact('role.json', `${JSON.stringify(discoveryRole(types, subs), null, 2)}\n`);
      const clientId = who?.claims?.appId ?? ctx.env.AZURE_CLIENT_ID ?? '<client-id>';
      const commands = roleCommands(roleFile, clientId, subs);
      const commandsFile = await artifact('role-commands.sh', `${commands.join('\n')}\n`);
      const lines = [
        `role ${ROLE_NAME}: ${serverTypesFor(types).map((t) => t.permission).join(', ')}, ${SUBSCRIPTION_READ}`,
        ...commands,
        ...result.databases.map((db) => `found ${db.name} (${db.labels['engine']}, ${db.labels['region']})`),
        ...result.errors.map((e) => `FAIL ${e.scope}: ${e.reason}${e.permission ? ` — missing ${e.permission}` : ''}`),
      ];
      const artifacts = [{ label: 'role', path: roleFile }, { label: 'commands', path: commandsFile }];
      if (result.errors.length > 0) {
        const missing = [...new Set(result.errors.map((e) => e.permission ?? (e.status === 403 ? SUBSCRIPTION_READ : undefined)).filter((p): p is string => Boolean(p)))];
        return report(
          'iam',
          'fail',
          missing.length > 0 ? `listing the servers was refused: missing ${missing.join(', ')}` : `listing the servers failed: ${result.errors[0]!.reason}`,
          `${result.errors[0]!.hint} Run the commands in ${commandsFile}, then r (role assignments take a few minutes to apply).`,
          lines,
          artifacts,
        );
      }
      if (result.databases.length === 0) {
        return report('iam', 'fail', 'listing works, but no server matches the types, regions and subscriptions chosen', 'Edit the fields (tab, e) or check the servers exist and are Ready.', lines, artifacts);
      }
      return report('iam', 'pass', `discovery lists ${result.databases.length} server(s): ${result.databases.map((d) => d.name).join(', ')}`, '', lines, artifacts);
    },

    checkUsers: (answers, signal) => usersReport(answers, signal),

    async runPrincipalSql(answers, signal) {
      const admin = answers.adminUser.trim();
      if (!admin) {
        const base = await usersReport(answers, signal);
        return { ...base, status: 'fail', detail: 'no Entra admin named', hint: 'Set the admin field (tab to it, e) to the server\'s Microsoft Entra admin, then x.' };
      }
      const who = await ensureIdentity(signal);
      const dbUser = answers.dbUser || 'teleport';
      const sources = await adminTokenSources();
      const outcome: string[] = [];
      for (const db of await chosenServers(answers, signal)) {
        const statements = principalSql(db.protocol, dbUser, who?.claims).filter((l) => !l.startsWith('--'));
        try {
          const target = await resolveTarget(db);
          const { session, source } = await openAdminSession(sources, (getToken) =>
            openSession(
              {
                target: { ...target, connectTimeoutMs: 5_000 },
                dbUser: admin, // the broker adds @server for a single server
                dbName: db.protocol === 'postgres' ? DEFAULT_POSTGRES_DB_NAME : DEFAULT_MYSQL_DB_NAME,
                authorize: () => ({ allowed: true }),
                getToken,
                audit: NO_AUDIT,
                applicationName: 'azdb setup',
              },
              signal,
            ),
          );
          try {
            const { existed } = await runPrincipalStatements(session, statements);
            const via = sources.length > 1 ? ` (${source} token)` : '';
            outcome.push(`${db.name}: ${existed ? `${dbUser} exists already (not made again); ` : ''}ran ${statements.length} statement(s) as ${admin}${via}`);
          } finally {
            await session.close();
          }
        } catch (error) {
          outcome.push(`${db.name}: could not run the SQL as ${admin}: ${error instanceof AdminLoginFailed ? error.message : serverError(error).message}`);
        }
      }
      return usersReport(answers, signal, outcome);
    },

    async writeConfig(answers, options, signal) {
      const exists = await access(configFile).then(
        () => true,
        () => false,
      );
      const check = async (what: string): Promise<StepReport> => {
        try {
          const config = await loadConfig(configFile);
          const warnings = config.warnings.map(formatIssue);
          return report('config', 'pass', `${what}; config check OK (${config.databases.length} databases, ${config.discovery.length} discovery entries, ${config.roles.length} roles)`, '', [...warnings, `next: azdb --config ${configFile} db ls`], [{ label: 'config', path: configFile }]);
        } catch (error) {
          return report('config', 'fail', `${what}; config check failed: ${errorMessage(error)}`, error instanceof AzdbError && error.hint ? error.hint : '', [], [{ label: 'config', path: configFile }]);
        }
      };
      if (exists && !options.overwrite) {
        if (options.keepExisting) return check(`kept the existing ${configFile}`);
        return { ...report('config', 'fail', `${configFile} already exists`, 'Overwrite it? y replaces it, n keeps it (and checks it).'), exists: true };
      }
      const input = await configInput(answers, signal);
      const text = renderConfig(input, {
        header: [
          'azdb configuration, written by `azdb setup`.',
          demo ? 'Emulated Azure of `azdb demo`: its servers are listed by local address (their Azure names do not resolve here).' : 'discovery: needs the azdb-discovery role (setup step 2); roles: who may log in as which database user.',
          'Check it with `azdb config check`, then list what it finds with `azdb db ls`.',
        ].join('\n'),
      });
      buildConfig(input, configFile);
      await mkdir(dirname(configFile), { recursive: true });
      await writeFile(configFile, text, { mode: 0o644 });
      return check(`wrote ${configFile}`);
    },

    async checkConnect(answers, signal) {
      let rt: Runtime;
      try {
        rt = await runtimeFor();
      } catch (error) {
        return report('connect', 'fail', `the config cannot be loaded: ${errorMessage(error)}`, 'Go back to step 4 (b).');
      }
      const wanted = parseList(answers.servers);
      const dbs = rt.databases().filter((db) => rt.allowed(db).dbUsers.length > 0);
      const db = dbs.find((d) => wanted.includes(d.name)) ?? dbs[0];
      if (!db) {
        return report('connect', 'fail', 'the config lists no database the roles let you use', `Run \`azdb --config ${configFile} db ls\`; check discovery and the role of step 4.`);
      }
      const deps = realDoctorDeps(
        {
          load: async () => ({
            configFile,
            config: rt.config,
            databases: rt.databases(),
            allowed: rt.allowed,
            authorize: rt.authorize,
            getToken: () => rt.tokens.getToken(rt.databaseScope),
            audit: NO_AUDIT,
          }),
          probeCredentials: (s) => probeCredentials({ cloud, env: ctx.env }, credsDeps, s),
        },
        ctx.env,
      );
      const doctor = await runDoctor({ name: db.name }, deps, signal);
      const lines = doctor.checks.map((c) => `${c.status.toUpperCase().padEnd(4)} ${c.title}: ${c.detail}`);
      const login = doctor.checks.find((c) => c.id === 'login');
      const failed = doctor.checks.find((c) => c.status === 'fail');
      if (login?.status !== 'pass') {
        return report('connect', 'fail', `test connection to ${db.name} failed: ${(failed ?? login)?.detail ?? 'login not run'}`, (failed ?? login)?.hint ?? '', lines);
      }
      return report('connect', 'pass', `connected to ${db.name} through the broker: ${login.detail}`, '', [...lines, `next: azdb --config ${configFile} (the picker), or azdb --config ${configFile} db connect ${db.name}`]);
    },

    async close() {
      await Promise.all(runtimes.splice(0).map((rt) => rt.close()));
    },
  };

  async function configInput(answers: SetupAnswers, signal: AbortSignal): Promise<ConfigInput> {
    const config = armConfig(answers);
    const types = chosenTypes(answers);
    const starter = starterConfig({ dbUser: answers.dbUser || 'teleport' });
    const role = { ...starter.roles![0]!, spec: { allow: { ...starter.roles![0]!.spec!.allow!, db_labels: { engine: serverTypesFor(types).map((t) => t.type) } } } };
    if (!demo) {
      return {
        version: 'v1',
        azure: { cloud },
        discovery: config.discovery.map(({ types: t, regions, subscriptions, resource_groups, tags }) => ({ types: t, regions, subscriptions, resource_groups, tags })),
        roles: [role],
        broker: { roles: [STARTER_ROLE_NAME] },
      };
    }
    const databases: DatabaseInput[] = (await chosenServers(answers, signal)).map((db) => ({
      name: db.name,
      protocol: db.protocol,
      uri: db.uri,
      ...(db.azure ? { azure: { ...db.azure } } : {}),
      tls: { mode: db.tls.mode, ...(db.tls.ca_file ? { ca_file: db.tls.ca_file } : {}), ...(db.tls.server_name ? { server_name: db.tls.server_name } : {}) },
      labels: { ...db.labels },
    }));
    return { version: 'v1', azure: { cloud, resource_manager_endpoint: demo!.armEndpoint }, databases, roles: [role], broker: { roles: [STARTER_ROLE_NAME] } };
  }
}

/** The running `azdb demo` of this state dir, when this shell sourced its env.sh. */
async function detectDemo(env: NodeJS.ProcessEnv, stateDir: string): Promise<DemoEnvironment | undefined> {
  if (!env.IDENTITY_ENDPOINT) return undefined;
  const dir = join(stateDir, 'demo');
  try {
    const envText = await readFile(join(dir, 'env.sh'), 'utf8');
    const endpoint = /^export IDENTITY_ENDPOINT='(.*)'$/m.exec(envText)?.[1];
    if (endpoint !== env.IDENTITY_ENDPOINT) return undefined;
    const config = await loadConfig(join(dir, 'azdb.yaml'));
    const armEndpoint = config.azure.resource_manager_endpoint;
    if (!armEndpoint) return undefined;
    const caPem = await readFile(join(dir, 'ca', 'ca.pem'), 'utf8');
    const dbUser = config.roles[0]?.spec.allow?.db_users?.find((u) => u !== '*');
    return { armEndpoint, caPem, databases: config.databases, dbUser };
  } catch {
    return undefined;
  }
}

