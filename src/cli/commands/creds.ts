/**
 * `azdb creds [--json]`: probes each credential source of DefaultAzureCredential on its own and
 * says which one azdb would use. Exit 1 when none yields a token. Never prints a token.
 */
import { credentialSettings } from '../../core/creds.js';
import { probeCredentials, type CredsContext, type CredsDeps, type CredsReport, type SourceResult } from '../../azure/credential-sources.js';
import { REAL_CREDS_DEPS } from '../../diagnostics/credential-advice.js';
import { formatSeconds } from '../../diagnostics/check.js';
import { ExitWithoutMessage } from '../exit.js';
import { hintFor, type CliContext } from '../context.js';
import type { Output } from '../output.js';

export async function creds(ctx: CliContext, deps: CredsDeps = REAL_CREDS_DEPS): Promise<void> {
  const settings = await credentialSettings(ctx);
  const probeCtx: CredsContext = { ...settings, env: ctx.env };
  const timeout = deps.timeoutMs ?? 5_000;
  // Under --json only progress goes to stderr; the results are the document.
  ctx.out.info(`Probing DefaultAzureCredential's sources one by one (each at most ${formatSeconds(timeout)}), cloud ${settings.cloud}${ctx.out.json ? '...' : ':'}`);
  const report = await probeCredentials(probeCtx, deps, new AbortController().signal, (source) => {
    if (!ctx.out.json) printSource(ctx.out, { ...source, hint: hintFor(source.hint, ctx.configFlag) });
  });
  if (ctx.out.json) {
    ctx.out.document(credsJson(report));
  } else {
    ctx.out.line();
    if (report.used) ctx.out.line(`DefaultAzureCredential would use ${report.used}.`);
    else ctx.out.line(`DefaultAzureCredential gets no token: ${report.summary}. Fix one of the sources above.`);
  }
  if (!report.ok) throw new ExitWithoutMessage(1);
}

/** The contract document of `azdb creds --json`: `detail` says what happened, `hint` what to do (as doctor's checks). */
export function credsJson(report: CredsReport): { ok: boolean; used: string | null; sources: Array<{ name: string; ok: boolean; detail: string; hint: string }> } {
  return {
    ok: report.ok,
    used: report.used,
    sources: report.sources.map((s) => ({ name: s.name, ok: s.ok, detail: s.detail, hint: s.hint })),
  };
}

function printSource(out: Output, source: SourceResult): void {
  const mark = source.ok ? 'ok  ' : source.excluded || source.notTried ? 'skip' : 'FAIL';
  out.line(`  ${mark}  ${source.name.padEnd(28)} ${source.ok ? 'yields a token' : source.detail}`);
  if (source.ok && source.claims) {
    const c = source.claims;
    const rows: Array<[string, string | undefined]> = [
      ['tenant', c.tenantId],
      ['object id', c.objectId],
      ['app id', c.appId],
      ['user', c.upn],
      ['audience', c.audience],
      ['expires', c.expiresOn === undefined ? undefined : new Date(c.expiresOn).toISOString()],
    ];
    for (const [label, value] of rows) if (value !== undefined) out.line(`          ${label.padEnd(10)} ${value}`);
  }
  if (!source.ok && source.hint) out.line(`          fix: ${source.hint}`);
  if (source.stopsChain) out.line('          (DefaultAzureCredential stops here: later sources are not tried)');
}
