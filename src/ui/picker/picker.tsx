/**
 * The connection picker: state in a reducer, hooks for keys / size / core events / pending work,
 * and {@link PickerView} to render. It leaves (through `onExit`) to quit or to hand the terminal
 * to psql / mariadb; run-picker.tsx mounts it again afterwards with the state it left with.
 */
import { useCallback, useReducer, useRef } from 'react';
import { useApp, useStdout } from 'ink';
import type { TuiApi } from '../../core/api/picker.js';
import { createTheme, ThemeContext } from '../theme.js';
import { useCoreEvents, useDatabaseNames, usePendingWork, usePickerInput, usePoolCounters, useTerminalSize, type PickerOutcome } from './hooks.js';
import { initialPickerState, pickerReducer, type PickerState } from './state.js';
import { PickerView } from './views.js';
import { DoctorScreen } from '../doctor/views.js';
import { QueriesScreen } from '../queries/views.js';

export interface PickerProps {
  api: TuiApi;
  /** State to resume with (after a client exits); default a fresh picker that loads the list. */
  initialState?: PickerState;
  /** @default false */
  color?: boolean;
  onExit?: (outcome: PickerOutcome) => void;
  /** The queries screen's automatic refresh. @default 3000 */
  queriesRefreshMs?: number;
  /** How often the pools' counters are read while tunnels are open. @default 1000 */
  poolsRefreshMs?: number;
}

export function Picker({ api, initialState, color = false, onExit, queriesRefreshMs, poolsRefreshMs }: PickerProps) {
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
  const leaveScreen = useCallback((to: 'back' | 'quit') => dispatch({ type: to }), []);
  const overlay = state.overlay;
  const screen =
    overlay.kind === 'doctor' ? (
      <DoctorScreen key={`doctor-${overlay.name}`} api={api} name={overlay.name} columns={state.columns} rows={state.rows} onLeave={leaveScreen} />
    ) : overlay.kind === 'queries' ? (
      <QueriesScreen
        key={`queries-${overlay.name}`}
        api={api}
        name={overlay.name}
        login={overlay.login}
        columns={state.columns}
        rows={state.rows}
        {...(queriesRefreshMs ? { refreshMs: queriesRefreshMs } : {})}
        onLeave={leaveScreen}
      />
    ) : undefined;
  useTerminalSize(dispatch);
  useCoreEvents(api, state.lastSeq, dispatch);
  const { write: writeTerminal } = useStdout();
  usePendingWork(api, state, dispatch, leave, writeTerminal);
  useDatabaseNames(api, state, dispatch);
  usePoolCounters(api, state.tunnels.length, dispatch, poolsRefreshMs);
  // The doctor and queries screens read the keys themselves.
  usePickerInput(state, dispatch, screen === undefined);
  return (
    <ThemeContext.Provider value={createTheme(color)}>
      <PickerView state={state} screen={state.pending?.kind === 'quit' ? undefined : screen} />
    </ThemeContext.Provider>
  );
}
