/**
 * The core of `azdb setup`: the guide's five steps (credentials, IAM role, database users, broker
 * config, connect), each a live check in ./steps that returns a StepReport and writes its
 * artifacts under `$AZDB_STATE_DIR/setup/`. The wizard (src/ui/wizard) and the plain / --json mode
 * get the {@link SetupApi} built here; tests inject a fake. Nothing here prints, and no file it
 * writes holds a token or a secret (exports.sh carries a placeholder for the client secret).
 */
import { resolve, join } from 'node:path';
import { DEFAULT_POSTGRES_DB_NAME } from '../../access/index.js';
import { CLOUDS, databaseScope } from '../../azure/clouds.js';
import { createAzureCliCredential } from '../../azure/credential.js';
import type { CredsDeps } from '../../azure/credential-sources.js';
import { TokenCache } from '../../azure/token-cache.js';
import { createUserStateStore, type UserStateStore } from '../../config/user-state.js';
import { REAL_CREDS_DEPS } from '../../diagnostics/credential-advice.js';
import { which } from '../../process/exec.js';
import { DEFAULT_PRIVILEGE, type SetupApi } from '../api/setup.js';
import type { CoreContext } from '../context.js';
import { configPath, createTokenCache, stateDirOf, type Runtime } from '../runtime.js';
import type { AdminTokenSource } from './admin-sql.js';
import { loadSetupBasis } from './basis.js';
import type { SetupContext } from './context.js';
import { checkConnect } from './steps/connect.js';
import { checkCredentials } from './steps/credentials.js';
import { checkIam } from './steps/iam.js';
import { writeConfig } from './steps/config.js';
import { checkUsers, runPrincipalSql } from './steps/users.js';

export interface SetupApiOptions {
  store?: UserStateStore;
  credsDeps?: CredsDeps;
}

export async function createSetupApi(ctx: CoreContext, options: SetupApiOptions = {}): Promise<SetupApi> {
  const configFile = resolve(configPath(ctx));
  const stateDir = stateDirOf(ctx);
  const store = options.store ?? createUserStateStore({ cwd: stateDir });
  // The config to write when it is there already, else the one this shell uses.
  const basis = await loadSetupBasis([configFile, ...(ctx.env.AZDB_CONFIG ? [resolve(configPath({ env: ctx.env, configFlag: undefined }))] : [])]);
  const tokens = createTokenCache({ cloud: basis.cloud, ...(basis.managedIdentityClientId ? { managed_identity_client_id: basis.managedIdentityClientId } : {}) }, ctx.env);
  const scope = databaseScope(CLOUDS[basis.cloud]);
  const sc: SetupContext = {
    env: ctx.env,
    configFile,
    artifactDir: join(stateDir, 'setup'),
    basis,
    tokens,
    scope,
    credsDeps: options.credsDeps ?? REAL_CREDS_DEPS,
    adminTokenSources: () => adminTokenSources(ctx.env, tokens, scope),
    found: {},
  };
  const runtimes: Runtime[] = [];
  return {
    configFile,
    artifactDir: sc.artifactDir,
    async environmentNote() {
      const arm = basis.armEndpoint ? `, ARM ${basis.armEndpoint}` : '';
      return `Azure (${basis.cloud}${arm}); ${basis.source ? `starting from ${basis.source}` : 'no config yet'}; writes ${configFile}`;
    },
    async defaults() {
      return {
        types: 'postgres,mysql',
        regions: '*',
        subscriptions: '*',
        dbUser: basis.dbUser ?? 'teleport',
        privilege: DEFAULT_PRIVILEGE,
        pgDatabases: DEFAULT_POSTGRES_DB_NAME,
        // MySQL has no database every server has: the person names it.
        mysqlDatabases: '',
        adminUser: '',
        servers: '',
      };
    },
    loadProgress: () => store.wizardProgress(),
    saveProgress: (progress) => store.saveWizardProgress(progress),
    checkCredentials: (signal) => checkCredentials(sc, signal),
    checkIam: (answers, signal) => checkIam(sc, answers, signal),
    checkUsers: (answers, signal) => checkUsers(sc, answers, signal),
    runPrincipalSql: (answers, signal) => runPrincipalSql(sc, answers, signal),
    writeConfig: (answers, writeOptions, signal) => writeConfig(sc, answers, writeOptions, signal),
    checkConnect: (answers, signal) => checkConnect(sc, answers, signal, (rt) => runtimes.push(rt)),
    async close() {
      await Promise.all(runtimes.splice(0).map((rt) => rt.close()));
    },
  };
}

/** The admin's token: the person's Azure CLI login first when `az` is here, then DefaultAzureCredential. */
async function adminTokenSources(env: NodeJS.ProcessEnv, tokens: TokenCache, scope: string): Promise<AdminTokenSource[]> {
  const sources: AdminTokenSource[] = [];
  if (await which('az', env)) {
    const cli = new TokenCache({ credential: createAzureCliCredential() });
    sources.push({ name: 'Azure CLI', getToken: () => cli.getToken(scope) });
  }
  sources.push({ name: 'DefaultAzureCredential', getToken: () => tokens.getToken(scope) });
  return sources;
}
