/**
 * The picker's hooks: each maps one source (keys, terminal size, core events, pending work) to
 * actions, and undoes its subscription on return.
 */
import { useEffect, useRef, type Dispatch } from 'react';
import { useInput, useStdout } from 'ink';
import type { TuiApi, TuiLogin } from '../../core/api/picker.js';
import { inputToActions } from './input.js';
import type { PickerAction, PickerState } from './state.js';

/** Keys → actions. */
export function usePickerInput(state: PickerState, dispatch: Dispatch<PickerAction>, isActive = true): void {
  const latest = useRef(state);
  latest.current = state;
  useInput(
    (input, key) => {
      for (const action of inputToActions(latest.current, input, key)) dispatch(action);
    },
    { isActive },
  );
}

/** Terminal resizes → `resize`. */
export function useTerminalSize(dispatch: Dispatch<PickerAction>): void {
  const { stdout } = useStdout();
  useEffect(() => {
    const onResize = () => dispatch({ type: 'resize', columns: stdout.columns || 80, rows: stdout.rows || 24 });
    onResize();
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, dispatch]);
}

/** Core events (tunnels, sessions) → `core-events`, starting with those missed while unmounted. */
export function useCoreEvents(api: Pick<TuiApi, 'eventsSince' | 'subscribe'>, lastSeq: number, dispatch: Dispatch<PickerAction>): void {
  const from = useRef(lastSeq);
  useEffect(() => {
    const missed = api.eventsSince(from.current);
    if (missed.length > 0) dispatch({ type: 'core-events', events: missed });
    return api.subscribe((event) => dispatch({ type: 'core-events', events: [event] }));
  }, [api, dispatch]);
}

/** How often the pools' counters are read again while tunnels are open. */
export const POOL_REFRESH_MS = 1_000;

/**
 * The pools' counters → `pools`: read from the core when the open tunnels change and every
 * `refreshMs` while any is open (the counters move with every client, without an event each).
 */
export function usePoolCounters(api: Pick<TuiApi, 'pools'>, openTunnels: number, dispatch: Dispatch<PickerAction>, refreshMs = POOL_REFRESH_MS): void {
  useEffect(() => {
    const read = () => dispatch({ type: 'pools', pools: api.pools() });
    read();
    if (openTunnels === 0) return;
    const timer = setInterval(read, refreshMs);
    return () => clearInterval(timer);
  }, [api, openTunnels, dispatch, refreshMs]);
}

/**
 * The name step of a login where the roles allow any name: the server's databases from the core
 * (asked as the chosen user) → `names-listed` / `names-failed`. Closing the step gives up.
 */
export function useDatabaseNames(api: Pick<TuiApi, 'databaseNames' | 'describeError'>, state: PickerState, dispatch: Dispatch<PickerAction>): void {
  const overlay = state.overlay;
  const loading = overlay.kind === 'login' && overlay.step.listing?.state === 'loading';
  const name = loading ? overlay.name : undefined;
  const dbUser = loading ? (overlay.dbUser ?? '') : undefined;
  useEffect(() => {
    if (name === undefined || dbUser === undefined) return;
    const controller = new AbortController();
    api.databaseNames(name, dbUser, controller.signal).then(
      (names) => !controller.signal.aborted && dispatch({ type: 'names-listed', name, dbUser, names }),
      (error: unknown) => !controller.signal.aborted && dispatch({ type: 'names-failed', name, dbUser, error: api.describeError(error) }),
    );
    return () => controller.abort();
  }, [api, name, dbUser, dispatch]);
}

export type PickerOutcome =
  | { kind: 'quit'; state: PickerState }
  | { kind: 'connect'; name: string; login: TuiLogin; state: PickerState };

/** OSC 52: the terminal (and tmux with set-clipboard on) puts the base64 text on the clipboard. */
export function clipboardSequence(text: string): string {
  return `\u001b]52;c;${Buffer.from(text, 'utf8').toString('base64')}\u0007`;
}

/** Carries out `state.pending` against the core and answers with an action (or leaves the picker). */
export function usePendingWork(
  api: TuiApi,
  state: PickerState,
  dispatch: Dispatch<PickerAction>,
  leave: (outcome: PickerOutcome) => void,
  writeTerminal: (data: string) => void,
): void {
  const latest = useRef(state);
  latest.current = state;
  const pending = state.pending;
  useEffect(() => {
    if (!pending) return;
    const controller = new AbortController();
    const answer = (action: PickerAction) => {
      if (!controller.signal.aborted) dispatch(action);
    };
    const failed = (title: string, error: unknown) => answer({ type: 'failed', title, error: api.describeError(error), retry: pending });
    switch (pending.kind) {
      case 'load':
        api.databases(controller.signal).then(
          (databases) => answer({ type: 'loaded', databases }),
          (error: unknown) => failed('Could not list the databases', error),
        );
        break;
      case 'open-tunnel':
        api.openTunnel(pending.name, pending.login, controller.signal).then(
          (tunnel) => {
            // Quit (or unmount) came first: the tunnel is nobody's, close it.
            if (controller.signal.aborted) void api.closeTunnel(tunnel.id);
            else answer({ type: 'tunnel-opened', tunnel });
          },
          (error: unknown) => failed(`Could not open a tunnel to ${pending.name}`, error),
        );
        break;
      case 'close-tunnel':
        api.closeTunnel(pending.id).then(
          () => answer({ type: 'tunnel-close-done' }),
          (error: unknown) => answer({ type: 'failed', title: 'Could not close the tunnel', error: api.describeError(error) }),
        );
        break;
      case 'copy':
        writeTerminal(clipboardSequence(pending.text));
        answer({ type: 'copied', what: pending.what });
        break;
      case 'connect':
        api.prepareConnect(pending.name, pending.login, controller.signal).then(
          () => answer({ type: 'client-ready' }),
          (error: unknown) => failed(`Could not connect to ${pending.name}`, error),
        );
        break;
      case 'launch':
        leave({ kind: 'connect', name: pending.name, login: pending.login, state: latest.current });
        break;
      case 'quit':
        leave({ kind: 'quit', state: latest.current });
        break;
    }
    return () => controller.abort();
  }, [api, pending, dispatch, leave, writeTerminal]);
}
