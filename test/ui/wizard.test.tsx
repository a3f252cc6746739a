import { describe, expect, it } from 'vitest';
import { render } from 'ink-testing-library';
import type { SetupAnswers, SetupApi, StepId, StepReport } from '../../src/core/api/setup.js';
import type { WizardProgress } from '../../src/config/user-state.js';
import { Wizard } from '../../src/ui/wizard/wizard.js';
import { waitFor } from '../helpers/wait.js';

const ANSWERS: SetupAnswers = { types: 'postgres,mysql', regions: '*', subscriptions: '*', dbUser: 'teleport', privilege: 'read-only', pgDatabases: 'postgres', mysqlDatabases: '', adminUser: '', servers: '' };

function fakeApi(outcomes: Partial<Record<StepId, Array<'pass' | 'fail'>>> = {}, options: { configExists?: boolean } = {}) {
  const calls: string[] = [];
  const answersSeen: SetupAnswers[] = [];
  let saved: WizardProgress | undefined;
  let exists = options.configExists ?? false;
  const next = (step: StepId): StepReport => {
    const status = outcomes[step]?.shift() ?? 'pass';
    return { step, status, detail: `${step} is ${status}`, hint: status === 'fail' ? `fix ${step}` : '', lines: [`line of ${step}`], artifacts: [{ label: 'file', path: `/tmp/${step}.txt` }] };
  };
  const api: SetupApi = {
    configFile: '/tmp/azdb.yaml',
    artifactDir: '/tmp/setup',
    environmentNote: async () => 'fake Azure',
    defaults: async () => ANSWERS,
    loadProgress: () => saved,
    saveProgress: (p) => (saved = p),
    checkCredentials: async () => (calls.push('credentials'), next('credentials')),
    checkIam: async (a) => (calls.push(`iam:${a.regions}`), next('iam')),
    checkUsers: async (a) => (calls.push('users'), answersSeen.push(a), next('users')),
    runPrincipalSql: async (a) => (calls.push(`run-sql:${a.adminUser}`), next('users')),
    writeConfig: async (_a, o) => {
      calls.push(`config:${o.overwrite}:${Boolean(o.keepExisting)}`);
      if (exists && !o.overwrite && !o.keepExisting) return { ...next('config'), status: 'fail', exists: true, detail: 'exists' };
      exists = true;
      return next('config');
    },
    checkConnect: async () => (calls.push('connect'), next('connect')),
    close: async () => {},
  };
  return { api, calls, answersSeen, saved: () => saved };
}

describe('wizard screens', () => {
  it('walks the five steps with enter, shows pass and artifacts, and offers the picker', async () => {
    const { api, calls, saved } = fakeApi();
    let exited: string | undefined;
    const ui = render(<Wizard api={api} answers={ANSWERS} onExit={(o) => (exited = o)} />);
    await waitFor(() => ui.lastFrame()?.includes('PASS credentials is pass'), 'step 1');
    expect(ui.lastFrame()).toContain('file: /tmp/credentials.txt');
    expect(ui.lastFrame()).toContain('step 1/5: Credentials');
    for (const [step, text] of [['iam', 'PASS iam is pass'], ['users', 'PASS users is pass'], ['config', 'PASS config is pass'], ['connect', 'PASS connect is pass']] as const) {
      ui.stdin.write('\r');
      await waitFor(() => ui.lastFrame()?.includes(text), step);
    }
    ui.stdin.write('\r');
    await waitFor(() => ui.lastFrame()?.includes('Setup is complete'), 'done');
    expect(saved()?.completed).toEqual(['credentials', 'iam', 'users', 'config', 'connect']);
    expect(calls).toEqual(['credentials', 'iam:*', 'users', 'config:false:false', 'connect']);
    ui.stdin.write('o');
    await waitFor(() => exited === 'picker', 'exit');
    ui.unmount();
  });

  it('shows a failure with its hint; r retries, s skips, b goes back', async () => {
    const { api, calls } = fakeApi({ credentials: ['fail', 'pass'], iam: ['fail'] });
    const ui = render(<Wizard api={api} answers={ANSWERS} />);
    await waitFor(() => ui.lastFrame()?.includes('FAIL credentials is fail'), 'fail');
    expect(ui.lastFrame()).toContain('hint: fix credentials');
    // No next on a failure: enter changes nothing, so the r after it retries step 1 (keys are handled in order).
    ui.stdin.write('\r');
    ui.stdin.write('r');
    await waitFor(() => ui.lastFrame()?.includes('PASS credentials is pass'), 'retry');
    expect(ui.lastFrame()).toContain('step 1/5');
    expect(calls).toEqual(['credentials', 'credentials']);
    ui.stdin.write('\r');
    await waitFor(() => ui.lastFrame()?.includes('FAIL iam is fail'), 'iam fails');
    ui.stdin.write('s');
    await waitFor(() => ui.lastFrame()?.includes('step 3/5'), 'skipped to users');
    ui.stdin.write('b');
    await waitFor(() => ui.lastFrame()?.includes('PASS iam is pass'), 'back to iam');
    expect(calls.filter((c) => c.startsWith('iam'))).toHaveLength(2);
    ui.unmount();
  });

  it('edits a field, runs the SQL as the admin, and asks before overwriting the config', async () => {
    const { api, calls } = fakeApi({}, { configExists: true });
    const ui = render(<Wizard api={api} answers={{ ...ANSWERS, adminUser: 'old-admin' }} progress={{ step: 2, completed: ['credentials', 'iam'], answers: {} }} />);
    await waitFor(() => ui.lastFrame()?.includes('PASS users is pass'), 'users');
    ui.stdin.write('\t\t\t\t'); // past the privilege level and the databases of each engine
    await waitFor(() => ui.lastFrame()?.includes('› Entra admin:'), 'the admin field focused');
    // One chunk, as fast typing over SSH delivers it: edit, clear the old value, type, commit.
    ui.stdin.write(`e${'\u007f'.repeat('old-admin'.length)}admin@example.com\r`);
    await waitFor(() => calls.includes('users') && calls.filter((c) => c === 'users').length === 2, 're-check');
    // x while a check runs is ignored: wait until the re-check is done.
    await waitFor(() => !ui.lastFrame()?.includes('Checking database users') && ui.lastFrame()?.includes('PASS users is pass'), 'the re-check to finish');
    ui.stdin.write('x');
    await waitFor(() => calls.includes('run-sql:admin@example.com'), 'run-sql');
    await waitFor(() => ui.lastFrame()?.includes('PASS users is pass'), 'users again');
    ui.stdin.write('\r');
    await waitFor(() => ui.lastFrame()?.includes('Overwrite the existing config? (y/n)'), 'confirm');
    ui.stdin.write('n');
    await waitFor(() => ui.lastFrame()?.includes('PASS config is pass'), 'kept');
    expect(calls).toContain('config:false:true');
    ui.unmount();
  });

  it('asks for the privilege level with the arrows, explains each, and re-checks with the one chosen', async () => {
    const { api, answersSeen } = fakeApi();
    const ui = render(<Wizard api={api} answers={ANSWERS} progress={{ step: 2, completed: ['credentials', 'iam'], answers: {} }} />);
    await waitFor(() => ui.lastFrame()?.includes('PASS users is pass'), 'users');
    expect(ui.lastFrame()).toContain('privilege level: read-only — read every table');
    expect(ui.lastFrame()).toContain('PostgreSQL databases: postgres');
    expect(ui.lastFrame()).toContain('MySQL databases: (empty)');
    ui.stdin.write('\t');
    await waitFor(() => ui.lastFrame()?.includes('› privilege level:'), 'the privilege field focused');
    ui.stdin.write('e');
    await waitFor(() => ui.lastFrame()?.includes('(↑/↓ choose, enter save, esc cancel)'), 'the choices');
    const choices = ui.lastFrame()!;
    for (const level of ['● read-only', '○ read-write', '○ owner']) expect(choices).toContain(level);
    expect(choices).toContain('↑/k previous');
    ui.stdin.write('\u001B[B'); // down
    await waitFor(() => ui.lastFrame()?.includes('● read-write'), 'read-write chosen');
    ui.stdin.write('\r');
    await waitFor(() => answersSeen.some((a) => a.privilege === 'read-write'), 'the check with read-write');
    await waitFor(() => ui.lastFrame()?.includes('privilege level: read-write — read-only + insert'), 'the answer shown');
    ui.unmount();
  });

  it('? shows every key and the privilege levels; esc goes back to the step', async () => {
    const { api } = fakeApi();
    const ui = render(<Wizard api={api} answers={ANSWERS} progress={{ step: 2, completed: ['credentials', 'iam'], answers: {} }} />);
    await waitFor(() => ui.lastFrame()?.includes('PASS users is pass'), 'users');
    expect(ui.lastFrame()).toContain('? help');
    ui.stdin.write('?');
    await waitFor(() => ui.lastFrame()?.includes('Privilege levels'), 'the help');
    const help = ui.lastFrame()!;
    expect(help).toContain('step 3: run the SQL on every server as the Entra admin');
    expect(help).toMatch(/owner\s+read-write \+ create and drop tables/);
    expect(help).not.toContain('PASS users is pass');
    ui.stdin.write('\u001B');
    await waitFor(() => ui.lastFrame()?.includes('PASS users is pass'), 'back to the step');
    ui.unmount();
  });
});
