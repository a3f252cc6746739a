/**
 * Runs the picker on the terminal until the user quits: mount Ink, and when the user connects,
 * unmount it (raw mode off, input released), let psql / mariadb have the terminal through the
 * core API, then mount the picker again with the state it left with.
 */
import type { TuiApi } from '../core/api/picker.js';
import type { PickerOutcome } from './picker/hooks.js';
import { Picker } from './picker/picker.js';
import { pickerReducer, type PickerState } from './picker/state.js';
import { mountUntilExit } from './mount.js';

/** A terminal input stream for one mount of Ink, and how to let go of it. */
export interface TerminalInput {
  stream: NodeJS.ReadStream;
  close(): void;
}

export interface RunPickerOptions {
  api: TuiApi;
  /** Honour NO_COLOR: false renders without colours. @default false */
  color?: boolean;
  /** @default process.stdout */
  stdout?: NodeJS.WriteStream;
  /** A fresh input for each mount, released before a client gets the terminal. */
  openInput: () => TerminalInput;
  /** Aborting it leaves the picker (SIGTERM, or SIGINT while no client runs). */
  signal?: AbortSignal;
}

export async function runPicker(options: RunPickerOptions): Promise<void> {
  const { api, signal } = options;
  let state: PickerState | undefined;
  while (!signal?.aborted) {
    const outcome = await mountOnce(options, state);
    if (!outcome || outcome.kind === 'quit' || signal?.aborted) return;
    try {
      const { exitCode, client } = await api.connect(outcome.name, outcome.login, signal);
      state = pickerReducer(outcome.state, { type: 'client-exited', name: outcome.name, exitCode, client });
    } catch (error) {
      state = pickerReducer(outcome.state, { type: 'client-failed', error: api.describeError(error) });
    }
  }
}

async function mountOnce(options: RunPickerOptions, state: PickerState | undefined): Promise<PickerOutcome | undefined> {
  const input = options.openInput();
  let outcome: PickerOutcome | undefined;
  try {
    await mountUntilExit(
      <Picker api={options.api} color={options.color ?? false} {...(state ? { initialState: state } : {})} onExit={(o) => (outcome = o)} />,
      { stdin: input.stream, stdout: options.stdout, signal: options.signal },
    );
  } finally {
    input.close();
  }
  return outcome;
}
