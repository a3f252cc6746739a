/**
 * The connection picker: state in a reducer, hooks for keys / size / core events / pending work,
 * and {@link PickerView} to render. It leaves (through `onExit`) to quit or to hand the terminal
 * to psql / mariadb; run-picker.tsx mounts it again afterwards with the state it left with.
 */
import { useCallback, useReducer, useRef } from 'react';
import { useApp } from 'ink';
import type { TuiApi } from '../../cli/tui-api.js';
import { createTheme, ThemeContext } from '../theme.js';
import { useCoreEvents, usePendingWork, usePickerInput, useTerminalSize, type PickerOutcome } from './hooks.js';
import { initialPickerState, pickerReducer, type PickerState } from './state.js';
import { PickerView } from './views.js';

export interface PickerProps {
  api: TuiApi;
  /** State to resume with (after a client exits); default a fresh picker that loads the list. */
  initialState?: PickerState;
  /** @default false */
  color?: boolean;
  onExit?: (outcome: PickerOutcome) => void;
}

export function Picker({ api, initialState, color = false, onExit }: PickerProps) {
  const [state, dispatch] = useReducer(pickerReducer, initialState ?? initialPickerState());
  const { exit } = useApp();
  const left = useRef(false);
  const leave = useCallback(
    (outcome: PickerOutcome) => {
      if (left.current) return;
      left.current = true;
      onExit?.(outcome);
      exit();
    },
    [exit, onExit],
  );
  useTerminalSize(dispatch);
  useCoreEvents(api, state.lastSeq, dispatch);
  usePendingWork(api, state, dispatch, leave);
  usePickerInput(state, dispatch);
  return (
    <ThemeContext.Provider value={createTheme(color)}>
      <PickerView state={state} />
    </ThemeContext.Provider>
  );
}
