/**
 * The queries screen: its view (renders a {@link QueriesScreenState}, nothing else) and the
 * component that holds the state and the hooks.
 */
import { useCallback, useReducer } from 'react';
import { Box, Text } from 'ink';
import type { TuiApi, TuiLogin, TuiSession } from '../../core/api/picker.js';
import { KeyBar } from '../components/key-bar.js';
import { KeyHelp } from '../components/key-help.js';
import { detailViewport } from '../detail/state.js';
import { DetailView } from '../detail/views.js';
import { Spinner } from '../components/spinner.js';
import { formatDuration, oneLine } from '../../format.js';
import { textLines, windowStart } from '../layout.js';
import { useTheme } from '../theme.js';
import { useAutoRefresh, useQueriesInput, useQueriesWork } from './hooks.js';
import {
  actLabel,
  initialQueriesState,
  outcomeLine,
  queriesHelpRows,
  queriesKeyBar,
  queriesReducer,
  type QueriesIntent,
  type QueriesScreenState,
} from './state.js';

export const DEFAULT_REFRESH_MS = 3_000;

export interface QueriesScreenProps {
  api: Pick<TuiApi, 'openQueries' | 'describeError'>;
  name: string;
  login: TuiLogin;
  /** @default 80 */
  columns?: number;
  /** @default 24 */
  rows?: number;
  /** Automatic refresh. @default 3000 */
  refreshMs?: number;
  /** `esc` (back to the list) or `Q` / ctrl+c (quit the picker). */
  onLeave: (to: 'back' | 'quit') => void;
}

export function QueriesScreen({ api, name, login, columns = 80, rows = 24, refreshMs = DEFAULT_REFRESH_MS, onLeave }: QueriesScreenProps) {
  const [state, dispatch] = useReducer(queriesReducer, undefined, () => initialQueriesState(name, login));
  useQueriesWork(api, state, dispatch);
  useAutoRefresh(refreshMs, dispatch);
  const onIntent = useCallback(
    (intent: QueriesIntent) => {
      if (intent.type === 'leave') onLeave(intent.to);
      else dispatch(intent);
    },
    [onLeave],
  );
  const height = tableHeight(rows);
  useQueriesInput(state, onIntent, height, detailViewport(columns, detailRows(rows)));
  return <QueriesView state={state} columns={columns} rows={rows} refreshMs={refreshMs} />;
}

/** Session rows at this terminal height: title, header, two error lines, three outcome lines, key bar and a spare row. */
export function tableHeight(rows: number): number {
  return Math.max(3, rows - 9);
}

/** Rows of a details view: all but the title, the key bar and a spare row. */
function detailRows(rows: number): number {
  return Math.max(3, rows - 3);
}

/** The error lines: none, or what the message and hint take (at most 2). */
function errorHeight(state: QueriesScreenState, columns: number): number {
  if (!state.error) return 0;
  return Math.min(2, textLines(`Could not log in to ${state.name}: ${state.error.message} hint: ${state.error.hint ?? ''} (r retries)`, columns));
}

/** The outcome lines: one, or what the outcome and its hint take (at most 3). */
function actHeight(state: QueriesScreenState, columns: number): number {
  const { act, outcome } = state;
  if (act || !outcome) return 1;
  return Math.min(3, textLines(outcomeLine(outcome), columns) + (outcome.hint ? textLines(`hint: ${outcome.hint}`, columns) : 0));
}

export function QueriesView({ state, columns, rows, refreshMs }: { state: QueriesScreenState; columns: number; rows: number; refreshMs: number }) {
  const theme = useTheme();
  const login = `${state.login.dbUser}${state.login.dbName ? `/${state.login.dbName}` : ''}`;
  const count = state.loaded ? `${state.sessions.length} other session${state.sessions.length === 1 ? '' : 's'}` : '';
  const updated = state.listedAt ? `updated ${state.listedAt}, every ${Math.round(refreshMs / 1000)} s` : '';
  return (
    <Box flexDirection="column" width={columns}>
      <Text wrap="truncate-end">
        <Text bold color={theme.accent}>
          Queries
        </Text>
        <Text>
          {' '}
          · {state.name} as {login}
        </Text>
        <Text color={theme.muted}>{[count, updated].filter(Boolean).map((part) => ` · ${part}`).join('')}</Text>
      </Text>
      {state.help ? (
        <QueriesHelp />
      ) : state.detail ? (
        <DetailView detail={state.detail} columns={columns} rows={detailRows(rows)} />
      ) : (
        <SessionTable state={state} columns={columns} height={Math.min(tableHeight(rows), Math.max(1, state.sessions.length))} />
      )}
      {state.detail && !state.help ? null : (
        <>
          <Box height={errorHeight(state, columns)} overflow="hidden" flexDirection="column">
            <ErrorLines state={state} />
          </Box>
          <Box height={actHeight(state, columns)} overflow="hidden" flexDirection="column">
            <ActLine state={state} />
          </Box>
        </>
      )}
      <KeyBar hints={queriesKeyBar(state)} />
    </Box>
  );
}

const COLUMNS = [
  { title: 'PID', width: 7 },
  { title: 'USER', width: 14 },
  { title: 'DATABASE', width: 10 },
  { title: 'STATE', width: 20 },
  { title: 'DURATION', width: 12 },
] as const;

function cells(session: TuiSession): string[] {
  return [String(session.pid), session.user ?? '', session.database ?? '', session.state ?? '', formatDuration(session.durationMs)];
}

function fit(text: string, width: number): string {
  return text.length > width - 1 ? `${text.slice(0, width - 2)}… ` : text.padEnd(width);
}

function SessionTable({ state, height }: { state: QueriesScreenState; columns: number; height: number }) {
  const theme = useTheme();
  let body;
  if (state.connection === 'connecting' && !state.loaded) body = <Spinner label={`Logging in to ${state.name}…`} />;
  else if (!state.loaded && state.connection === 'open') body = <Spinner label="Listing the sessions…" />;
  else if (state.loaded && state.sessions.length === 0) body = <Text color={theme.muted}>No other sessions on the server.</Text>;
  else {
    const start = windowStart(state.cursor, state.sessions.length, height);
    body = state.sessions.slice(start, start + height).map((session, i) => {
      const selected = start + i === state.cursor;
      return (
        <Text key={session.pid} wrap="truncate-end" bold={selected} inverse={selected && !theme.color} color={selected ? theme.accent : undefined}>
          {selected ? '▸ ' : '  '}
          {cells(session).map((cell, c) => fit(cell, COLUMNS[c]!.width)).join('')}
          {oneLine(session.query ?? '')}
        </Text>
      );
    });
  }
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end" color={theme.muted}>
        {'  '}
        {COLUMNS.map((c) => c.title.padEnd(c.width)).join('')}QUERY
      </Text>
      <Box flexDirection="column" height={height} overflow="hidden">
        {body}
      </Box>
    </Box>
  );
}

function ErrorLines({ state }: { state: QueriesScreenState }) {
  const theme = useTheme();
  if (!state.error) return null;
  const what = state.connection === 'failed' ? `Could not log in to ${state.name}` : 'Could not list the sessions';
  return (
    <Text wrap="wrap" color={theme.error}>
      {what}: {state.error.message}
      {state.error.hint ? ` hint: ${state.error.hint}` : ''} (r retries)
    </Text>
  );
}

function ActLine({ state }: { state: QueriesScreenState }) {
  const theme = useTheme();
  const { act, outcome } = state;
  if (act?.phase === 'confirm') {
    return (
      <Text wrap="truncate-end" bold color={theme.warn}>
        Terminate session {act.pid} ({act.summary})? y/n
      </Text>
    );
  }
  if (act) return <Spinner label={actLabel(act)} />;
  if (outcome) {
    const color = outcome.status === 'done' ? theme.ok : outcome.status === 'refused' ? theme.error : theme.warn;
    return (
      <>
        <Text wrap="wrap" color={color}>
          {outcomeLine(outcome)}
        </Text>
        {outcome.hint ? <Text wrap="wrap">hint: {outcome.hint}</Text> : null}
      </>
    );
  }
  return <Text wrap="truncate-end" color={theme.muted}>enter shows the whole query; c cancels it; T ends the session (asks first)</Text>;
}

function QueriesHelp() {
  return <KeyHelp title="Keys of the queries screen" rows={queriesHelpRows()} />;
}
