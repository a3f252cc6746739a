/**
 * `azdb doctor [NAME] [--json]`: config, credential and (for NAME) DNS, TCP, TLS, token and a
 * real login through the broker, plus the local client. Exit 1 when any check fails.
 */
import type { CheckResult } from '../../diagnostics/check.js';
import type { DoctorDeps } from '../../diagnostics/doctor.js';
import { runDoctor } from '../../diagnostics/doctor.js';
import { doctorDeps } from '../../core/doctor.js';
import type { Runtime } from '../../core/runtime.js';
import type { LoginFlags } from '../../core/tunnels.js';
import { UserError } from '../../errors.js';
import { ExitWithoutMessage } from '../exit.js';
import { hintFor, type CliContext } from '../context.js';
import type { Output } from '../output.js';

const MARK: Record<CheckResult['status'], string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

export async function doctorCommand(ctx: CliContext, name: string | undefined, login: LoginFlags = {}, overrides: Partial<DoctorDeps> = {}): Promise<void> {
  if (name === undefined && (login.dbUser !== undefined || login.dbName !== undefined)) {
    throw new UserError('--db-user and --db-name need a database NAME', { usage: true, hint: 'Run `azdb doctor NAME --db-user USER`.' });
  }
  let runtime: Runtime | undefined;
  const deps: DoctorDeps = {
    ...doctorDeps(ctx, { ...(name !== undefined ? { name } : {}), onRuntime: (rt) => (runtime = rt) }),
    ...overrides,
  };
  // Under --json only progress goes to stderr; the results are the document.
  const colon = ctx.out.json ? '...' : ':';
  ctx.out.info(name ? `Checking "${name}"${colon}` : `Checking the config and the credential (name a database to check it too)${colon}`);
  try {
    const withConfig = (check: CheckResult): CheckResult => ({ ...check, hint: hintFor(check.hint, ctx.configFlag) });
    const options = { ...(name !== undefined ? { name } : {}), ...(login.dbUser !== undefined || login.dbName !== undefined ? { login } : {}) };
    const report = await runDoctor(options, deps, new AbortController().signal, (check) => {
      if (!ctx.out.json) printCheck(ctx.out, withConfig(check));
    });
    if (ctx.out.json) {
      ctx.out.document({ ok: report.ok, checks: report.checks.map(withConfig).map(({ id, title, status, detail, hint }) => ({ id, title, status, detail, hint })) });
    } else {
      const failed = report.checks.filter((c) => c.status === 'fail');
      const loginSkipped = report.checks.find((c) => c.id === 'login' && c.status === 'skip');
      ctx.out.line();
      if (failed.length > 0) ctx.out.line(`${failed.length} check(s) failed: ${failed.map((c) => c.id).join(', ')}.`);
      else if (loginSkipped) ctx.out.line(`No problems found, but the login was not checked: ${loginSkipped.detail}.`);
      else ctx.out.line('No problems found.');
    }
    if (!report.ok) throw new ExitWithoutMessage(1);
  } finally {
    await runtime?.close();
  }
}

function printCheck(out: Output, check: CheckResult): void {
  out.line(`  ${MARK[check.status]}  ${check.title.padEnd(26)} ${check.detail}`);
  if (check.hint && check.status !== 'pass') out.line(`        hint: ${check.hint}`);
}
