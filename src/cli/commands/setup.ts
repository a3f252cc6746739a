/**
 * `azdb setup`: the onboarding wizard on a terminal. Without one (stdin or stdout not a TTY), or
 * with --json, it runs the five checks in order with the saved answers (or the defaults), writes
 * the artifacts, never overwrites an existing config (it checks it instead), prints each step's
 * result and artifact paths (plain text, or one JSON document `{"ok","config","steps":[…]}`) and
 * exits 0 when every step passes, 1 otherwise.
 */
import { ANSWER_KEYS, STEP_IDS, STEP_TITLES, type SetupAnswers, type SetupApi, type StepReport } from '../../core/api/setup.js';
import { createSetupApi } from '../../core/setup/api.js';
import { ExitWithoutMessage } from '../exit.js';
import type { CliContext } from '../context.js';
import { isInteractive, openTerminalInput, runTuiSession } from './tui.js';

export async function setup(ctx: CliContext, api?: SetupApi): Promise<void> {
  const setupApi = api ?? (await createSetupApi(ctx));
  try {
    if (ctx.out.json || !isInteractive()) {
      await plainSetup(ctx, setupApi);
      return;
    }
    const { runWizard } = await import('../../ui/wizard/wizard.js');
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    const input = openTerminalInput();
    let outcome: 'quit' | 'picker';
    try {
      outcome = await runWizard({ api: setupApi, color: ctx.out.color, input: input.stream, signal: stop.signal });
    } finally {
      input.close();
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
    }
    await setupApi.close();
    if (outcome === 'quit') ctx.out.info(progressNote(setupApi));
    if (outcome === 'picker' && !stop.signal.aborted) await runTuiSession({ ...ctx, configFlag: setupApi.configFile });
  } finally {
    await setupApi.close();
  }
}

/** Where `azdb setup` picks up next time (the wizard saves its progress as it goes). */
export function progressNote(api: Pick<SetupApi, 'loadProgress'>): string {
  const progress = api.loadProgress();
  if (!progress) return 'Nothing saved yet: `azdb setup` starts at step 1.';
  if (progress.step >= STEP_IDS.length) return 'Setup is complete; `azdb setup` shows the summary again.';
  const step = STEP_IDS[progress.step]!;
  return `Progress saved: \`azdb setup\` resumes at step ${progress.step + 1}/${STEP_IDS.length}, ${STEP_TITLES[step]}, with your answers.`;
}

export async function plainSetup(ctx: CliContext, api: SetupApi): Promise<StepReport[]> {
  const answers: SetupAnswers = await api.defaults();
  const saved = api.loadProgress()?.answers ?? {};
  for (const key of ANSWER_KEYS) if (typeof saved[key] === 'string') answers[key] = saved[key]!;
  const signal = new AbortController().signal;
  ctx.out.info(`azdb setup without a terminal: running the five checks with ${api.loadProgress() ? 'the saved' : 'the default'} answers. ${await api.environmentNote()}`);
  const reports: StepReport[] = [];
  const steps: Array<() => Promise<StepReport>> = [
    () => api.checkCredentials(signal),
    () => api.checkIam(answers, signal),
    () => api.checkUsers(answers, signal),
    () => api.writeConfig(answers, { overwrite: false, keepExisting: true }, signal),
    () => api.checkConnect(answers, signal),
  ];
  for (const [i, step] of steps.entries()) {
    const report = await step();
    reports.push(report);
    ctx.out.line(`${report.status === 'pass' ? 'PASS' : 'FAIL'}  ${i + 1}/5 ${STEP_TITLES[report.step]}: ${report.detail}`);
    if (report.status === 'fail' && report.hint) ctx.out.line(`      hint: ${report.hint}`);
    for (const line of report.lines) ctx.out.line(`      ${line}`);
    for (const a of report.artifacts) ctx.out.line(`      ${a.label}: ${a.path}`);
  }
  const ok = reports.every((r) => r.status === 'pass');
  if (ctx.out.json) {
    ctx.out.document({
      ok,
      config: api.configFile,
      artifact_dir: api.artifactDir,
      steps: reports.map((r) => ({ id: r.step, title: STEP_TITLES[r.step], status: r.status, detail: r.detail, hint: r.hint, artifacts: r.artifacts })),
    });
  }
  if (!ok) throw new ExitWithoutMessage(1);
  return reports;
}
