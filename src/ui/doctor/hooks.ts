/**
 * The doctor screen's hooks: one runs the doctor for each `run` of the state (aborting the one
 * before), one maps key presses to intents. Both undo themselves on return.
 */
import { useEffect, useRef, type Dispatch } from 'react';
import { useInput } from 'ink';
import type { TuiApi } from '../../core/api/picker.js';
import { keyPresses } from '../keys.js';
import { doctorKeyToIntent, type DoctorAction, type DoctorIntent } from './state.js';

/** Runs `azdb doctor NAME` through the core API; each result is dispatched as it finishes. */
export function useDoctorRun(api: Pick<TuiApi, 'doctor' | 'describeError'>, name: string, run: number, dispatch: Dispatch<DoctorAction>): void {
  useEffect(() => {
    const controller = new AbortController();
    const answer = (action: DoctorAction) => {
      if (!controller.signal.aborted) dispatch(action);
    };
    api.doctor(name, (check) => answer({ type: 'result', run, check }), controller.signal).then(
      (report) => answer({ type: 'finished', run, ok: report.ok }),
      (error: unknown) => answer({ type: 'failed', run, error: api.describeError(error) }),
    );
    return () => controller.abort();
  }, [api, name, run, dispatch]);
}

/** Keys → intents (several characters at once are several keys). */
export function useDoctorInput(onIntent: (intent: DoctorIntent) => void, isActive = true): void {
  const latest = useRef(onIntent);
  latest.current = onIntent;
  useInput(
    (input, key) => {
      for (const [char, press] of keyPresses(input, key)) {
        const intent = doctorKeyToIntent(char, press);
        if (intent) latest.current(intent);
      }
    },
    { isActive },
  );
}
