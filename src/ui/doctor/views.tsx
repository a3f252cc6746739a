/**
 * The doctor screen: its view (renders a {@link DoctorScreenState}, nothing else) and the
 * component that holds the state and the hooks.
 */
import { useCallback, useReducer } from 'react';
import { Box, Text } from 'ink';
import type { TuiApi, TuiCheck } from '../../core/api/picker.js';
import { KeyBar } from '../components/key-bar.js';
import { Spinner } from '../components/spinner.js';
import { useTheme } from '../theme.js';
import { useDoctorInput, useDoctorRun } from './hooks.js';
import { KeyHelp } from '../components/key-help.js';
import { detailViewport } from '../detail/state.js';
import { DetailView } from '../detail/views.js';
import { screenHelpRows } from '../keys.js';
import {
  DOCTOR_COMMANDS,
  doctorKeyBar,
  doctorMode,
  doctorReducer,
  doctorRows,
  doctorRowsHeight,
  doctorSummary,
  HINT_INDENT,
  initialDoctorState,
  ROW_MARGIN,
  selectedRowIndex,
  STATUS_MARK,
  type DoctorIntent,
  type DoctorRow,
  type DoctorScreenState,
} from './state.js';

export interface DoctorScreenProps {
  api: Pick<TuiApi, 'doctor' | 'doctorPlan' | 'describeError'>;
  /** The database to check. */
  name: string;
  /** @default 80 */
  columns?: number;
  /** @default 24 */
  rows?: number;
  /** `esc` (back to the list) or `Q` / ctrl+c (quit the picker). */
  onLeave: (to: 'back' | 'quit') => void;
}

export function DoctorScreen({ api, name, columns = 80, rows = 24, onLeave }: DoctorScreenProps) {
  const [state, dispatch] = useReducer(doctorReducer, undefined, () => initialDoctorState(name, api.doctorPlan(name)));
  useDoctorRun(api, name, state.run, dispatch);
  const onIntent = useCallback(
    (intent: DoctorIntent) => {
      if (intent.type === 'leave') onLeave(intent.to);
      else dispatch(intent);
    },
    [onLeave],
  );
  // Rows of a details view: all but the screen's title, the key bar and a spare row.
  useDoctorInput(state, onIntent, detailViewport(columns, Math.max(3, rows - 3)));
  return <DoctorView state={state} columns={columns} rows={rows} />;
}

export function DoctorView({ state, columns, rows }: { state: DoctorScreenState; columns: number; rows: number }) {
  const theme = useTheme();
  // Title, summary and key bar, and one spare row so the live area stays under the terminal's height.
  const height = Math.min(Math.max(3, rows - 4), doctorRowsHeight(state, columns));
  const selected = selectedRowIndex(state);
  const mode = doctorMode(state);
  return (
    <Box flexDirection="column" width={columns}>
      <Text wrap="truncate-end">
        <Text bold color={theme.accent}>
          Doctor
        </Text>
        <Text> · {state.name}</Text>
        <Text color={theme.muted}> · the checks of `azdb doctor {state.name}`</Text>
      </Text>
      {mode === 'help' ? (
        <KeyHelp title="Keys of the doctor screen" rows={screenHelpRows(DOCTOR_COMMANDS)} />
      ) : mode === 'detail' && state.detail ? (
        <DetailView detail={state.detail} columns={columns} rows={Math.max(3, rows - 3)} />
      ) : (
        <>
          <Box flexDirection="column" height={height} overflow="hidden">
            {doctorRows(state).map((row, i) => (
              <CheckRow key={row.kind === 'result' ? row.check.id : row.id} row={row} selected={i === selected} />
            ))}
            {state.error?.hint ? <Text wrap="wrap">hint: {state.error.hint}</Text> : null}
          </Box>
          {state.running ? <Spinner label={doctorSummary(state)} /> : <Text wrap="truncate-end" bold color={state.ok ? theme.ok : theme.error}>{doctorSummary(state)}</Text>}
        </>
      )}
      <KeyBar hints={doctorKeyBar(state)} />
    </Box>
  );
}

const TITLE_WIDTH = 26;

function CheckRow({ row, selected }: { row: DoctorRow; selected: boolean }) {
  const theme = useTheme();
  const margin = selected ? '▸ ' : ROW_MARGIN;
  if (row.kind === 'running') {
    return (
      <Box>
        <Text>{margin}</Text>
        <Spinner label={`${'RUN'.padEnd(4)} ${row.title}`} />
      </Box>
    );
  }
  if (row.kind === 'waiting') {
    return (
      <Text wrap="truncate-end" color={theme.muted}>
        {margin}· {'WAIT'.padEnd(4)} {row.title}
      </Text>
    );
  }
  const { check } = row;
  const color = statusColor(check, theme);
  const serious = check.status === 'fail' || check.status === 'warn';
  return (
    <Box flexDirection="column">
      <Text wrap={serious ? 'wrap' : 'truncate-end'} bold={selected}>
        {margin}
        <Text bold color={color}>
          {STATUS_MARK[check.status]}
        </Text>{' '}
        {check.title.padEnd(TITLE_WIDTH)} <Text color={check.status === 'skip' ? theme.muted : undefined}>{check.detail}</Text>
      </Text>
      {serious && check.hint ? (
        <Text wrap="wrap">
          {HINT_INDENT}
          <Text color={color}>hint:</Text> {check.hint}
        </Text>
      ) : null}
    </Box>
  );
}

function statusColor(check: TuiCheck, theme: ReturnType<typeof useTheme>): string | undefined {
  switch (check.status) {
    case 'pass':
      return theme.ok;
    case 'warn':
      return theme.warn;
    case 'fail':
      return theme.error;
    case 'skip':
      return theme.muted;
  }
}
