/**
 * `azdb doctor [NAME]` and the picker's doctor screen: the checks of src/diagnostics over what
 * this config and runtime would use.
 */
import { probeCredentials } from '../azure/credential-sources.js';
import { REAL_CREDS_DEPS } from '../diagnostics/credential-advice.js';
import type { DoctorDeps, DoctorSetup } from '../diagnostics/doctor.js';
import { realDoctorDeps } from '../diagnostics/real-deps.js';
import type { CoreContext } from './context.js';
import { credentialSettings } from './creds.js';
import { configPath, loadRuntime, type Runtime } from './runtime.js';

/** What the doctor checks: the config file `ctx` names and the runtime `rt` loaded from it. */
export function doctorSetup(ctx: CoreContext, rt: Runtime): DoctorSetup {
  return {
    configFile: configPath(ctx),
    config: rt.config,
    databases: rt.databases(),
    allowed: rt.allowed,
    authorize: rt.authorize,
    getToken: () => rt.tokens.getToken(rt.databaseScope),
    audit: rt.audit,
  };
}

/**
 * The doctor's real dependencies. With `runtime`, the checks see that runtime (the picker's);
 * without, one is loaded on the first check (discovery only when NAME may be a discovered
 * database) and handed to `onRuntime` so the caller can close it.
 */
export function doctorDeps(ctx: CoreContext, options: { name?: string; runtime?: Runtime; onRuntime?: (rt: Runtime) => void }): DoctorDeps {
  return realDoctorDeps(
    {
      load: async () => {
        if (options.runtime) return doctorSetup(ctx, options.runtime);
        const { name } = options;
        const rt = await loadRuntime(ctx, { discover: (config) => name === undefined || !config.databases.some((db) => db.name === name) });
        options.onRuntime?.(rt);
        return doctorSetup(ctx, rt);
      },
      probeCredentials: async (signal) => probeCredentials({ ...(await credentialSettings(ctx)), env: ctx.env }, REAL_CREDS_DEPS, signal),
    },
    ctx.env,
  );
}
