/**
 * The setup wizard: state in a reducer, hooks for keys / work / progress, {@link WizardView} to
 * render. It leaves through `onExit` (quit, or open the picker on the config it wrote).
 */
import { useEffect, useReducer, useRef } from 'react';
import { useApp } from 'ink';
import type { SetupAnswers, SetupApi } from '../../core/api/setup.js';
import type { WizardProgress } from '../../core/api/setup.js';
import { createTheme, ThemeContext } from '../theme.js';
import { useSaveProgress, useWizardInput, useWizardWork } from './hooks.js';
import { initialWizardState, wizardReducer } from './state.js';
import { WizardView } from './views.js';
import { mountUntilExit } from '../mount.js';

export interface WizardProps {
  api: SetupApi;
  answers: SetupAnswers;
  progress?: WizardProgress | undefined;
  note?: string;
  /** @default false */
  color?: boolean;
  onExit?: (outcome: 'quit' | 'picker') => void;
}

export function Wizard({ api, answers, progress, note = '', color = false, onExit }: WizardProps) {
  const [state, dispatch] = useReducer(wizardReducer, undefined, () => initialWizardState(answers, progress));
  const { exit } = useApp();
  const left = useRef(false);
  useWizardInput(state, dispatch);
  useWizardWork(api, state, dispatch);
  useSaveProgress(api, state);
  useEffect(() => {
    if (!state.exit || left.current) return;
    left.current = true;
    onExit?.(state.exit);
    exit();
  }, [state.exit, exit, onExit]);
  return (
    <ThemeContext.Provider value={createTheme(color)}>
      <WizardView state={state} note={note} configFile={api.configFile} />
    </ThemeContext.Provider>
  );
}

/** Mounts the wizard on the terminal until it exits; says whether to open the picker next. */
export async function runWizard(options: {
  api: SetupApi;
  color: boolean;
  input: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  signal?: AbortSignal;
}): Promise<'quit' | 'picker'> {
  const { api } = options;
  const [answers, note] = await Promise.all([api.defaults(), api.environmentNote()]);
  let outcome: 'quit' | 'picker' = 'quit';
  await mountUntilExit(<Wizard api={api} answers={answers} progress={api.loadProgress()} note={note} color={options.color} onExit={(o) => (outcome = o)} />, {
    stdin: options.input,
    stdout: options.stdout,
    signal: options.signal,
  });
  return outcome;
}
