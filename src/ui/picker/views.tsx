/**
 * The picker's views: they render a {@link PickerState} and nothing else (no input, no effects).
 */
import type { ReactNode } from 'react';
import { Box, Static, Text } from 'ink';
import { KeyBar } from '../components/key-bar.js';
import { Spinner } from '../components/spinner.js';
import { windowStart } from '../layout.js';
import { useTheme } from '../theme.js';
import { helpRows, keyBar } from './input.js';
import { DetailView } from '../detail/views.js';
import type { TuiDatabase, TuiPool, TuiPoolKey } from '../../core/api/picker.js';
import { WILDCARD, listHeight, listingLines, listingNote, mainHeight, selectedLogIndex, selectedDatabase, shortIdentity, visibleDatabases, type LogLine, type Overlay, type PickerState, type TunnelRow } from './state.js';

/** `*` reads "any"; an empty MySQL database name reads "(none)". */
export function describeValues(values: readonly string[]): string {
  if (values.length === 0) return '(none)';
  return values.map((v) => (v === WILDCARD ? 'any' : v === '' ? '(none)' : v)).join(', ');
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/**
 * The broker log above, and below it the live area: the picker, or `screen` (the doctor or
 * queries screen, rendered by the caller) in its place.
 */
export function PickerView({ state, screen }: { state: PickerState; screen?: ReactNode }) {
  return (
    <>
      <Static items={state.log.slice(state.logBase)}>{(line) => <LogRow key={line.id} line={line} />}</Static>
      {state.pending?.kind === 'quit' || state.pending?.kind === 'launch' ? (
        <Leaving state={state} />
      ) : screen ? (
        screen
      ) : (
      <Box flexDirection="column" width={state.columns}>
        <Header state={state} />
        <Main state={state} />
        <StatusLine state={state} />
        {/* The help takes the broker panel's rows: at 80×24 it needs every line. */}
        {state.overlay.kind === 'help' ? null : <BrokerPanel tunnels={state.tunnels} pools={state.pools} />}
        <KeyBar hints={keyBar(state)} />
      </Box>
      )}
    </>
  );
}

/** The last frame, left on the terminal when the picker hands it to a client or quits. */
function Leaving({ state }: { state: PickerState }) {
  const theme = useTheme();
  const pending = state.pending;
  if (pending?.kind === 'launch') {
    const login = `${pending.login.dbUser}${pending.login.dbName ? `/${pending.login.dbName}` : ''}`;
    return (
      <Text wrap="truncate-end" color={theme.muted}>
        azdb: connecting to {pending.name} as {login}; the picker comes back when the client exits.
      </Text>
    );
  }
  return <Text color={theme.muted}>azdb: leaving the picker{state.tunnels.length > 0 ? ' and closing its tunnels' : ''}.</Text>;
}

function LogRow({ line }: { line: LogLine }) {
  const theme = useTheme();
  const color = line.level === 'error' ? theme.error : line.level === 'warn' ? theme.warn : undefined;
  return (
    <Text wrap="truncate-end">
      <Text color={theme.muted}>{line.time}</Text> <Text color={color}>{line.text}</Text>
    </Text>
  );
}

function Header({ state }: { state: PickerState }) {
  const theme = useTheme();
  const shown = visibleDatabases(state).length;
  const count = state.status === 'ready' ? (state.filter ? `${shown} of ${state.databases.length} databases` : `${state.databases.length} databases`) : '';
  return (
    <Text wrap="truncate-end">
      <Text bold color={theme.accent}>
        azdb
      </Text>
      <Text> {count}</Text>
      {state.filtering || state.filter ? (
        <Text>
          {'  '}filter <Text bold>/{state.filter}</Text>
          {state.filtering ? <Text inverse> </Text> : null}
        </Text>
      ) : null}
    </Text>
  );
}

function StatusLine({ state }: { state: PickerState }) {
  const theme = useTheme();
  if (state.busy) return <Spinner label={state.busy} />;
  if (state.notice) return <Text wrap="truncate-end" color={theme.muted}>{state.notice}</Text>;
  return <Text> </Text>;
}

function Main({ state }: { state: PickerState }) {
  const height = mainHeight(state);
  return (
    <Box flexDirection="column" height={height} overflow="hidden">
      <OverlayOrList state={state} overlay={state.overlay} height={height} />
    </Box>
  );
}

function OverlayOrList({ state, overlay, height }: { state: PickerState; overlay: Overlay; height: number }) {
  switch (overlay.kind) {
    case 'help':
      return <HelpScreen />;
    case 'error':
      return <ErrorBox title={overlay.title} message={overlay.error.message} {...(overlay.error.hint ? { hint: overlay.error.hint } : {})} canRetry={Boolean(overlay.retry)} />;
    case 'login':
      return <LoginChooser overlay={overlay} height={height} columns={state.columns} />;
    case 'confirm':
      return (
        <Box flexDirection="column">
          <OverlayOrList state={state} overlay={overlay.back} height={Math.max(1, height - 2)} />
          <Text bold wrap="wrap" color={useTheme().warn}>
            {overlay.question}
          </Text>
        </Box>
      );
    case 'log':
      return overlay.detail ? <DetailView detail={overlay.detail} columns={state.columns} rows={height} /> : <LogList log={state.log} selected={overlay.selected} height={height} />;
    case 'tunnel': {
      const tunnel = state.tunnels.find((t) => t.id === overlay.tunnelId);
      return tunnel ? <TunnelDetails tunnel={tunnel} showPassword={overlay.showPassword} /> : <Text>The tunnel is closed.</Text>;
    }
    case 'pools':
      return <PoolsView pools={state.pools} />;
    case 'none':
    case 'doctor': // rendered in place of the picker (see PickerView)
    case 'queries':
      return <DatabaseList state={state} />;
  }
}

function DatabaseList({ state }: { state: PickerState }) {
  const theme = useTheme();
  const visible = visibleDatabases(state);
  const height = listHeight(state);
  if (state.status === 'loading' && state.databases.length === 0) return <Text color={theme.muted}>Reading the config and the roles…</Text>;
  if (state.status === 'ready' && state.databases.length === 0) {
    return (
      <Box flexDirection="column">
        <Text>No databases you may use.</Text>
        <Text color={theme.muted}>Check `databases:` and `broker.roles` in the config (`azdb config check`), then start azdb again (Q quits).</Text>
      </Box>
    );
  }
  if (visible.length === 0) return <Text>No database matches /{state.filter}. esc clears the filter.</Text>;
  const start = windowStart(state.cursor, visible.length, height);
  const rows = visible.slice(start, start + height);
  const nameWidth = Math.max(8, ...visible.map((d) => d.name.length));
  const selected = selectedDatabase(state);
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end" color={theme.muted}>
        {'  '}
        {'NAME'.padEnd(nameWidth)} {'★'} {'PROTOCOL'.padEnd(8)} {'USERS'.padEnd(12)} LABELS
      </Text>
      <Box flexDirection="column" height={rows.length}>
        {rows.map((db, i) => (
          <DatabaseRow key={db.name} db={db} selected={start + i === state.cursor} nameWidth={nameWidth} />
        ))}
      </Box>
      {selected ? <Details db={selected} /> : null}
    </Box>
  );
}

function DatabaseRow({ db, selected, nameWidth }: { db: TuiDatabase; selected: boolean; nameWidth: number }) {
  const theme = useTheme();
  const recent = db.recent.length > 0 ? '★' : ' ';
  return (
    <Text wrap="truncate-end" inverse={selected && !theme.color} color={selected ? theme.accent : undefined} bold={selected}>
      {selected ? '▸ ' : '  '}
      {db.name.padEnd(nameWidth)} {recent} {db.protocol.padEnd(8)} {describeValues(db.dbUsers).padEnd(12)} <Text color={selected ? undefined : theme.muted}>{formatLabels(db.labels)}</Text>
    </Text>
  );
}

function Details({ db }: { db: TuiDatabase }) {
  const theme = useTheme();
  const last = db.recent[0];
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end" color={theme.muted}>
        {db.name} · {db.protocol} · {db.uri}
      </Text>
      <Text wrap="truncate-end" color={theme.muted}>
        users {describeValues(db.dbUsers)} · names {describeValues(db.dbNames)}
        {last ? ` · last ${last.dbUser}${last.dbName ? `/${last.dbName}` : ''}` : ''}
      </Text>
    </Box>
  );
}

function LoginChooser({ overlay, height, columns }: { overlay: Extract<Overlay, { kind: 'login' }>; height: number; columns: number }) {
  const theme = useTheme();
  const { step } = overlay;
  const what = step.field === 'user' ? 'database user' : 'database name';
  const verb = overlay.purpose === 'connect' ? 'Connect to' : overlay.purpose === 'tunnel' ? 'Open a tunnel to' : 'List the sessions of';
  const note = listingNote(step, overlay.name, overlay.dbUser);
  const noteLines = listingLines(step, columns);
  const visible = Math.max(1, height - 2 - noteLines);
  const start = windowStart(step.cursor, step.choices.length, visible);
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end" bold>
        {verb} {overlay.name}
        {overlay.dbUser ? ` as ${overlay.dbUser}` : ''}: choose the {what}
      </Text>
      {step.free ? (
        <Text wrap="truncate-end">
          {what}: <Text bold>{step.input}</Text>
          <Text inverse> </Text>
          <Text color={theme.muted}> {step.input ? '(enter uses what you typed)' : '(type any name the roles allow, or pick below)'}</Text>
        </Text>
      ) : (
        <Text color={theme.muted}>your roles allow these:</Text>
      )}
      {note === undefined ? null : step.listing?.state === 'loading' ? (
        <Spinner label={note} />
      ) : (
        <Box height={noteLines} overflow="hidden">
          <Text wrap="wrap" color={step.listing?.state === 'failed' ? theme.warn : theme.muted}>
            {note}
          </Text>
        </Box>
      )}
      {step.choices.slice(start, start + visible).map((choice, i) => {
        const selected = start + i === step.cursor && !(step.free && step.input);
        return (
          <Text key={`${choice}-${i}`} wrap="truncate-end" bold={selected} inverse={selected && !theme.color} color={selected ? theme.accent : undefined}>
            {selected ? '▸ ' : '  '}
            {choice === '' ? '(no default database)' : choice}
          </Text>
        );
      })}
    </Box>
  );
}

/** The broker log with a selection: each line cut to fit, enter / v shows one whole. */
function LogList({ log, selected, height }: { log: readonly LogLine[]; selected: number | undefined; height: number }) {
  const theme = useTheme();
  if (log.length === 0) {
    return (
      <Box flexDirection="column">
        <Text bold>Broker log</Text>
        <Text color={theme.muted}>Nothing logged yet: tunnels and sessions show here as they open and close.</Text>
      </Box>
    );
  }
  const cursor = selectedLogIndex(log, selected);
  const visible = Math.max(1, height - 1);
  const start = windowStart(cursor, log.length, visible);
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        Broker log <Text color={theme.muted}>· {log.length} line{log.length === 1 ? '' : 's'} · enter or v shows the selected one whole</Text>
      </Text>
      {log.slice(start, start + visible).map((line, i) => {
        const current = start + i === cursor;
        const color = line.level === 'error' ? theme.error : line.level === 'warn' ? theme.warn : undefined;
        return (
          <Text key={line.id} wrap="truncate-end" bold={current} inverse={current && !theme.color}>
            {current ? '▸ ' : '  '}
            <Text color={theme.muted}>{line.time}</Text> <Text color={current ? theme.accent : color}>{line.text}</Text>
          </Text>
        );
      })}
    </Box>
  );
}

function TunnelDetails({ tunnel, showPassword }: { tunnel: TunnelRow; showPassword: boolean }) {
  const theme = useTheme();
  const row = (label: string, value: string) => (
    <Text wrap="truncate-end">
      <Text color={theme.muted}>{label.padEnd(10)}</Text>
      {value}
    </Text>
  );
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        Tunnel {tunnel.id} to {tunnel.name} ({tunnel.protocol}) · {tunnel.sessions} session{tunnel.sessions === 1 ? '' : 's'}
      </Text>
      {row('host', tunnel.host)}
      {row('port', String(tunnel.port))}
      {row('user', tunnel.user)}
      {row('database', tunnel.database || '(none)')}
      {row('password', showPassword ? tunnel.password : `•••••••• (p shows it; ${tunnel.passwordFile ? `the same for every tunnel to ${tunnel.name}` : 'random for this tunnel'}, not your Azure credentials)`)}
      {tunnel.passwordFile ? row('kept in', tunnel.passwordFile) : null}
      {row('uri', tunnel.uri)}
      {tunnel.caFile ? row('tls', `on request; CA ${tunnel.caFile}`) : null}
      <Text wrap="wrap">{tunnel.command}</Text>
    </Box>
  );
}

function HelpScreen() {
  const theme = useTheme();
  return (
    <Box flexDirection="column">
      {helpRows().map((section) =>
        section.inline ? (
          <Text key={section.section} wrap="wrap">
            <Text bold>{section.section}</Text>
            {section.rows.map((row, i) => (
              <Text key={`${row.keys}-${row.label}`}>
                {i === 0 ? '  ' : <Text color={theme.muted}> · </Text>}
                <Text color={theme.accent}>{row.keys}</Text> {row.label}
              </Text>
            ))}
          </Text>
        ) : (
          <Box key={section.section} flexDirection="column">
            <Text bold wrap="truncate-end">
              {section.section}
            </Text>
            {/* Two rows a line, as lines of text: Ink's flex-wrap miscounts the height and the next heading overwrites the last line. */}
            {pairs(section.rows).map((pair) => (
              <Text key={pair.map((row) => `${row.keys}-${row.label}`).join('|')} wrap="truncate-end">
                {pair.map((row, i) => (
                  <Text key={`${row.keys}-${row.label}`}>
                    {'  '}
                    <Text color={theme.accent}>{row.keys.padEnd(14)}</Text> {i === 0 && pair.length > 1 ? row.label.padEnd(21) : row.label}
                  </Text>
                ))}
              </Text>
            ))}
          </Box>
        ),
      )}
    </Box>
  );
}

function ErrorBox({ title, message, hint, canRetry }: { title: string; message: string; hint?: string; canRetry: boolean }) {
  const theme = useTheme();
  return (
    <Box flexDirection="column">
      <Text bold color={theme.error}>
        {title}
      </Text>
      <Text wrap="wrap">error: {message}</Text>
      {hint ? <Text wrap="wrap">hint: {hint}</Text> : null}
      <Text color={theme.muted}>{canRetry ? 'Press r to retry, esc to go back, Q to quit.' : 'Press esc to go back, Q to quit.'}</Text>
    </Box>
  );
}

function BrokerPanel({ tunnels, pools }: { tunnels: readonly TunnelRow[]; pools: readonly TuiPool[] }) {
  const theme = useTheme();
  const shown = tunnels.slice(0, 3);
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end" bold>
        Broker{' '}
        <Text color={theme.muted}>
          · {tunnels.length === 0 ? 'no tunnels open (t opens one for GUI clients)' : `${tunnels.length} tunnel${tunnels.length === 1 ? '' : 's'} open (tab shows them)`} · l log
          {pools.length > 0 ? ` · o pool${pools.length === 1 ? '' : 's'}` : ''}
        </Text>
      </Text>
      {shown.map((t) => {
        const pool = pools.find((p) => p.tunnelId === t.id);
        return (
          <Text key={t.id} wrap="truncate-end">
            {'  '}
            {t.name} <Text color={theme.accent}>{t.host}:{t.port}</Text> {t.user}
            {t.database ? `/${t.database}` : ''} · {t.sessions} session{t.sessions === 1 ? '' : 's'}
            {pool ? ` · ${poolSummary(pool)}` : ''}
          </Text>
        );
      })}
      {tunnels.length > 3 ? <Text color={theme.muted}>  … {tunnels.length - 3} more</Text> : null}
    </Box>
  );
}

/** A tunnel row's tail, `pool: servers 1 active, 1 idle; 0 waiting` (o shows the mode and each key). */
export function poolSummary(pool: TuiPool): string {
  const sum = (field: 'serversActive' | 'serversIdle' | 'serversOpening' | 'clientsWaiting') => pool.keys.reduce((n, key) => n + key[field], 0);
  const opening = sum('serversOpening');
  return `pool: servers ${sum('serversActive')} active, ${sum('serversIdle')} idle${opening > 0 ? `, ${opening} opening` : ''}; ${sum('clientsWaiting')} waiting`;
}

/** The pools of the open tunnels: per pool its listener and mode, per key who and how busy. */
function PoolsView({ pools }: { pools: readonly TuiPool[] }) {
  const theme = useTheme();
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        Pools <Text color={theme.muted}>· server connections shared per database user, name and identity</Text>
      </Text>
      {pools.map((pool) => (
        <Box key={pool.tunnelId} flexDirection="column">
          <Text wrap="truncate-end">
            <Text bold>{pool.name}</Text> <Text color={theme.accent}>{pool.listener}</Text> · {pool.mode} mode · at most {pool.maxServerConnections} server connections per key
          </Text>
          {pool.keys.length === 0 ? <Text color={theme.muted}>  no server connections yet</Text> : pool.keys.map((key) => <PoolKeyRows key={`${key.dbUser}/${key.dbName}/${key.identity}`} poolKey={key} mode={pool.mode} />)}
        </Box>
      ))}
    </Box>
  );
}

function PoolKeyRows({ poolKey: key, mode }: { poolKey: TuiPoolKey; mode: TuiPool['mode'] }) {
  const theme = useTheme();
  return (
    <>
      <Text wrap="truncate-end">
        {'  '}
        {key.dbUser}/{key.dbName} <Text color={theme.muted}>as {shortIdentity(key.identity)}</Text>
      </Text>
      <Text wrap="truncate-end">
        {'    '}clients {key.clientsActive} active, <Text color={key.clientsWaiting > 0 ? theme.warn : undefined}>{key.clientsWaiting} waiting</Text> · servers {key.serversActive} active, {key.serversIdle} idle, {key.serversOpening} opening · {key.logins} login{key.logins === 1 ? '' : 's'}
        {mode === 'transaction' ? ` · ${key.clientsPinned} pinned` : ''}
      </Text>
    </>
  );
}

function pairs<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += 2) out.push(items.slice(i, i + 2));
  return out;
}
