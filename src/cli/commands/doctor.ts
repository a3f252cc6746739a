/**
 * `azdb doctor [NAME] [--json]`: config, credential and (for NAME) DNS, TCP, TLS, token and a
 * real login through the broker, plus the local client. Exit 1 when any check fails.
 */
import { homedir } from 'node:os';
import { resolveConfigPath } from '../../config/paths.js';
import { probeCredentials, REAL_CREDS_DEPS } from '../../diagnostics/credential-sources.js';
import { runDoctor, type DoctorDeps, type DoctorSetup } from '../../diagnostics/doctor.js';
import { realDoctorDeps } from '../../diagnostics/real-deps.js';
import type { CheckResult } from '../../diagnostics/check.js';
import { ExitWithoutMessage } from '../exit.js';
import type { CliContext } from '../main.js';
import type { Output } from '../output.js';
import { loadRuntime, type Runtime } from '../runtime.js';
import { credentialSettings } from './creds.js';

const MARK: Record<CheckResult['status'], string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

/** What the doctor checks: the config file `ctx` names and the runtime `rt` loaded from it. */
export function doctorSetup(ctx: CliContext, rt: Runtime): DoctorSetup {
  return {
    configFile: resolveConfigPath({ flag: ctx.configFlag, env: ctx.env, homedir: homedir() }),
    config: rt.config,
    databases: rt.databases(),
    allowed: rt.allowed,
    authorize: rt.authorize,
    getToken: () => rt.tokens.getToken(rt.databaseScope),
    audit: rt.audit,
  };
}

export async function doctorCommand(ctx: CliContext, name: string | undefined, overrides: Partial<DoctorDeps> = {}): Promise<void> {
  let runtime: Runtime | undefined;
  const deps: DoctorDeps = {
    ...realDoctorDeps(
      {
        load: async () => {
          // Discovery only when it is checked (no name) or NAME is not a static database (it may be a discovered one).
          runtime = await loadRuntime(ctx, { discover: (config) => name === undefined || !config.databases.some((db) => db.name === name) });
          return doctorSetup(ctx, runtime);
        },
        probeCredentials: async (signal) => probeCredentials({ ...(await credentialSettings(ctx)), env: ctx.env }, REAL_CREDS_DEPS, signal),
      },
      ctx.env,
    ),
    ...overrides,
  };
  ctx.out.line(name ? `Checking "${name}":` : 'Checking the config and the credential (name a database to check it too):');
  try {
    const report = await runDoctor({ ...(name !== undefined ? { name } : {}) }, deps, new AbortController().signal, (check) => printCheck(ctx.out, check));
    const failed = report.checks.filter((c) => c.status === 'fail');
    ctx.out.line();
    ctx.out.line(failed.length === 0 ? 'No problems found.' : `${failed.length} check(s) failed: ${failed.map((c) => c.id).join(', ')}.`);
    if (ctx.out.json) ctx.out.document({ ok: report.ok, checks: report.checks.map(({ id, title, status, detail, hint }) => ({ id, title, status, detail, hint })) });
    if (!report.ok) throw new ExitWithoutMessage(1);
  } finally {
    await runtime?.close();
  }
}

function printCheck(out: Output, check: CheckResult): void {
  out.line(`  ${MARK[check.status]}  ${check.title.padEnd(26)} ${check.detail}`);
  if (check.hint && check.status !== 'pass' && check.status !== 'skip') out.line(`        hint: ${check.hint}`);
}
