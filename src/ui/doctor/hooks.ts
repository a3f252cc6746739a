/**
 * The doctor screen's hooks: one runs the doctor for each `run` of the state (aborting the one
 * before), one maps key presses to intents. Both undo themselves on return.
 */
import { useEffect, useRef, type Dispatch } from 'react';
import { useInput } from 'ink';
import type { TuiApi } from '../../core/api/picker.js';
import { keyPresses } from '../keys.js';
import type { DetailViewport } from '../detail/state.js';
import { doctorKeyToIntent, doctorReducer, type DoctorAction, type DoctorIntent, type DoctorScreenState } from './state.js';

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

/** Keys → intents (several characters at once are several keys, each seeing the state before it). */
export function useDoctorInput(state: DoctorScreenState, onIntent: (intent: DoctorIntent) => void, detail: DetailViewport, isActive = true): void {
  const latest = useRef({ state, onIntent, detail });
  latest.current = { state, onIntent, detail };
  useInput(
    (input, key) => {
      let current = latest.current.state;
      for (const [char, press] of keyPresses(input, key)) {
        const intent = doctorKeyToIntent(current, char, press, latest.current.detail);
        if (!intent) continue;
        latest.current.onIntent(intent);
        if (intent.type !== 'leave') current = doctorReducer(current, intent);
      }
    },
    { isActive },
  );
}
