/**
 * The wizard's hooks: keys → actions, pending work → the setup API → actions, and progress →
 * the user-state store. Each undoes itself on return.
 */
import { useEffect, useRef, type Dispatch } from 'react';
import { useInput } from 'ink';
import type { SetupApi, StepReport } from '../../core/api/setup.js';
import { errorMessage } from '../../errors.js';
import { wizardInput } from './keys.js';
import { keyPresses } from '../keys.js';
import { toProgress, wizardReducer, type WizardAction, type WizardState } from './state.js';

/** Keys → actions (several characters at once are several keys, each seeing the state before it). */
export function useWizardInput(state: WizardState, dispatch: Dispatch<WizardAction>): void {
  const latest = useRef(state);
  latest.current = state;
  useInput((input, key) => {
    let current = latest.current;
    for (const [char, press] of keyPresses(input, key)) {
      for (const action of wizardInput(current, char, press)) {
        dispatch(action);
        current = wizardReducer(current, action);
      }
    }
  });
}

export function useWizardWork(api: SetupApi, state: WizardState, dispatch: Dispatch<WizardAction>): void {
  const latest = useRef(state);
  latest.current = state;
  const pending = state.pending;
  useEffect(() => {
    if (!pending) return;
    const controller = new AbortController();
    const { answers } = latest.current;
    const signal = controller.signal;
    const { work, id } = pending;
    const step = work.kind === 'check' ? work.step : work.kind === 'run-sql' ? 'users' : 'config';
    let running: Promise<StepReport>;
    if (work.kind === 'run-sql') running = api.runPrincipalSql(answers, signal);
    else if (work.kind === 'write-config') running = api.writeConfig(answers, { overwrite: work.overwrite, keepExisting: work.keepExisting }, signal);
    else if (work.step === 'credentials') running = api.checkCredentials(signal);
    else if (work.step === 'iam') running = api.checkIam(answers, signal);
    else if (work.step === 'users') running = api.checkUsers(answers, signal);
    else if (work.step === 'connect') running = api.checkConnect(answers, signal);
    else running = api.writeConfig(answers, { overwrite: false, keepExisting: false }, signal);
    running.then(
      (report) => {
        if (!signal.aborted) dispatch({ type: 'step-done', id, report });
      },
      (error: unknown) => {
        if (!signal.aborted) dispatch({ type: 'step-error', id, step, message: errorMessage(error) });
      },
    );
    return () => controller.abort();
  }, [api, pending, dispatch]);
}

/** Saves progress whenever the step, the outcome of a step or an answer changes. */
export function useSaveProgress(api: SetupApi, state: WizardState): void {
  const progress = toProgress(state);
  const key = JSON.stringify(progress);
  useEffect(() => {
    try {
      api.saveProgress(progress);
    } catch {
      // Resuming is a convenience; never fail the wizard over it.
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, key]);
}
