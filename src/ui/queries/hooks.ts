/**
 * The queries screen's hooks: log in (again on `connect`), list on `listRequest`, cancel /
 * terminate when an act is confirmed, a timer for the automatic refresh, and keys → intents.
 * Each undoes itself on return; the login is closed when the screen goes.
 */
import { useEffect, useRef, type Dispatch } from 'react';
import { useInput } from 'ink';
import type { TuiApi, TuiQueries } from '../../core/api/picker.js';
import type { DetailViewport } from '../detail/state.js';
import { keyPresses } from '../keys.js';
import { queriesKeyToIntent, queriesReducer, type QueriesAction, type QueriesIntent, type QueriesScreenState } from './state.js';

export function useQueriesWork(api: Pick<TuiApi, 'openQueries' | 'describeError'>, state: QueriesScreenState, dispatch: Dispatch<QueriesAction>): void {
  const handle = useRef<TuiQueries | undefined>(undefined);
  const { name, connect, listRequest } = state;
  const login = useRef(state.login);

  useEffect(() => {
    let gone = false;
    let opened: TuiQueries | undefined;
    api.openQueries(name, login.current).then(
      (queries) => {
        if (gone) {
          void queries.close();
          return;
        }
        opened = queries;
        handle.current = queries;
        dispatch({ type: 'connected', login: queries.login });
      },
      (error: unknown) => {
        if (!gone) dispatch({ type: 'connect-failed', error: api.describeError(error) });
      },
    );
    return () => {
      gone = true;
      if (handle.current === opened) handle.current = undefined;
      void opened?.close();
    };
  }, [api, name, connect, dispatch]);

  useEffect(() => {
    const queries = handle.current;
    if (listRequest === 0 || !queries) return;
    let gone = false;
    queries.list().then(
      (sessions) => !gone && dispatch({ type: 'listed', sessions, at: new Date().toISOString() }),
      (error: unknown) => !gone && dispatch({ type: 'list-failed', error: api.describeError(error) }),
    );
    return () => {
      gone = true;
    };
  }, [api, listRequest, dispatch]);

  const act = state.act?.phase === 'running' ? state.act : undefined;
  useEffect(() => {
    const queries = handle.current;
    if (!act) return;
    let gone = false;
    if (!queries) {
      dispatch({ type: 'act-failed', error: { message: 'not logged in to the server', hint: 'Press r to log in again.' } });
      return;
    }
    queries.act(act.action, act.pid).then(
      (outcome) => !gone && dispatch({ type: 'acted', outcome }),
      (error: unknown) => !gone && dispatch({ type: 'act-failed', error: api.describeError(error) }),
    );
    return () => {
      gone = true;
    };
  }, [api, act, dispatch]);
}

/** A refresh every `intervalMs` while the screen is open. */
export function useAutoRefresh(intervalMs: number, dispatch: Dispatch<QueriesAction>): void {
  useEffect(() => {
    const timer = setInterval(() => dispatch({ type: 'refresh', auto: true }), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs, dispatch]);
}

/** Keys → intents (several characters at once are several keys, each seeing the state before it). */
export function useQueriesInput(state: QueriesScreenState, onIntent: (intent: QueriesIntent) => void, pageRows: number, detail: DetailViewport, isActive = true): void {
  const latest = useRef({ state, onIntent, pageRows, detail });
  latest.current = { state, onIntent, pageRows, detail };
  useInput(
    (input, key) => {
      let current = latest.current.state;
      for (const [char, press] of keyPresses(input, key)) {
        const intent = queriesKeyToIntent(current, char, press, latest.current.pageRows, latest.current.detail);
        if (!intent) continue;
        latest.current.onIntent(intent);
        if (intent.type !== 'leave') current = queriesReducer(current, intent);
      }
    },
    { isActive },
  );
}
