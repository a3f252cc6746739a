/** Step 5: the config written in step 4 loaded as azdb would, and a test connection through the broker. */
import { probeCredentials } from '../../../azure/credential-sources.js';
import { NO_AUDIT } from '../../../broker/audit.js';
import { runDoctor } from '../../../diagnostics/doctor.js';
import { realDoctorDeps } from '../../../diagnostics/real-deps.js';
import { errorMessage } from '../../../errors.js';
import type { SetupAnswers, StepReport } from '../../api/setup.js';
import { SILENT_LOG } from '../../context.js';
import { loadRuntime, type Runtime } from '../../runtime.js';
import { parseList } from '../artifacts.js';
import { stepReport, type SetupContext } from '../context.js';

/** `onRuntime` gets the runtime loaded for the check, for the caller to close. */
export async function checkConnect(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal, onRuntime: (rt: Runtime) => void): Promise<StepReport> {
  const { configFile } = sc;
  let rt: Runtime;
  try {
    rt = await loadRuntime({ env: sc.env, configFlag: configFile, log: SILENT_LOG });
    onRuntime(rt);
  } catch (error) {
    return stepReport('connect', 'fail', `the config cannot be loaded: ${errorMessage(error)}`, 'Go back to step 4 (b).');
  }
  const wanted = parseList(answers.servers);
  const dbs = rt.databases().filter((db) => rt.allowed(db).dbUsers.length > 0);
  const db = dbs.find((d) => wanted.includes(d.name)) ?? dbs[0];
  if (!db) {
    return stepReport('connect', 'fail', 'the config lists no database the roles let you use', `Run \`azdb --config ${configFile} db ls\`; check discovery and the role of step 4.`);
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
      probeCredentials: (s) => probeCredentials({ cloud: rt.config.azure.cloud, env: sc.env }, sc.credsDeps, s),
    },
    sc.env,
  );
  const doctor = await runDoctor({ name: db.name }, deps, signal);
  const lines = doctor.checks.map((c) => `${c.status.toUpperCase().padEnd(4)} ${c.title}: ${c.detail}`);
  const login = doctor.checks.find((c) => c.id === 'login');
  const failed = doctor.checks.find((c) => c.status === 'fail');
  if (login?.status !== 'pass') {
    return stepReport('connect', 'fail', `test connection to ${db.name} failed: ${(failed ?? login)?.detail ?? 'login not run'}`, (failed ?? login)?.hint ?? '', lines);
  }
  return stepReport('connect', 'pass', `connected to ${db.name} through the broker: ${login.detail}`, '', [...lines, `next: azdb --config ${configFile} (the picker), or azdb --config ${configFile} db connect ${db.name}`]);
}
