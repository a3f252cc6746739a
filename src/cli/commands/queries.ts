/**
 * `azdb queries NAME [--db-user U] [--db-name D] [--cancel PID | --terminate PID] [--json]`:
 * the server's sessions through the broker (an in-process tunnel, as `azdb db connect` opens),
 * and the cancel / terminate helpers.
 */
import { loginSession } from '../../core/queries.js';
import { loadRuntime } from '../../core/runtime.js';
import { UserError } from '../../errors.js';
import type { DbSession } from '../../diagnostics/db-client.js';
import { actOnSession, listSessions, SessionActionRefused, type ActiveSession, type SessionAction } from '../../diagnostics/sessions.js';
import { formatDuration, oneLine } from '../../format.js';
import { ExitWithoutMessage } from '../exit.js';
import type { CliContext } from '../context.js';

export interface QueriesFlags {
  dbUser?: string;
  dbName?: string;
  cancel?: string;
  terminate?: string;
}

export async function queries(ctx: CliContext, name: string, flags: QueriesFlags): Promise<void> {
  const action: { kind: SessionAction; pid: number } | undefined =
    flags.cancel !== undefined ? { kind: 'cancel', pid: parsePid(flags.cancel, '--cancel') } : flags.terminate !== undefined ? { kind: 'terminate', pid: parsePid(flags.terminate, '--terminate') } : undefined;
  const rt = await loadRuntime(ctx);
  try {
    const { session } = await loginSession(rt, name, flags);
    try {
      if (action) {
        await act(ctx, session, action);
        return;
      }
      const sessions = await listSessions(session);
      if (ctx.out.json) ctx.out.document(sessions);
      else printTable(ctx, sessions);
    } finally {
      await session.close();
    }
  } finally {
    await rt.close();
  }
}

async function act(ctx: CliContext, session: DbSession, action: { kind: SessionAction; pid: number }): Promise<void> {
  try {
    const outcome = await actOnSession(session, action.kind, action.pid);
    if (ctx.out.json) ctx.out.document({ ok: outcome.ok, action: action.kind, pid: action.pid, message: outcome.message });
    else ctx.out.line(`${outcome.ok ? 'Done' : 'Not done'}: ${outcome.message}.`);
    if (!outcome.ok) {
      if (ctx.out.json) ctx.out.info(outcome.message);
      throw new ExitWithoutMessage(1);
    }
  } catch (error) {
    if (error instanceof SessionActionRefused) throw new UserError(error.message, error.hint ? { hint: error.hint } : {});
    throw error;
  }
}

function parsePid(value: string, flag: string): number {
  const pid = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(pid) || pid <= 0) throw new UserError(`${flag} needs a positive integer pid, got "${value}"`, { usage: true });
  return pid;
}

function printTable(ctx: CliContext, sessions: ActiveSession[]): void {
  if (sessions.length === 0) {
    ctx.out.line('No other sessions.');
    return;
  }
  const rows = sessions.map((s) => [
    String(s.pid),
    s.user ?? '',
    s.database ?? '',
    s.state ?? '',
    formatDuration(s.duration_ms),
    oneLine(s.query ?? '').slice(0, 80),
  ]);
  const header = ['PID', 'User', 'Database', 'State', 'Duration', 'Query'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  ctx.out.line(format(header));
  for (const row of rows) ctx.out.line(format(row));
}

