import { constants } from 'node:os';

/** Ends a command with an exit code after it has already said everything (e.g. a --json document). */
export class ExitWithoutMessage extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitWithoutMessage';
  }
}

/** The command was stopped by a signal (Ctrl+C: exit 130, SIGTERM: 143); there is nothing more to say. */
export class Interrupted extends ExitWithoutMessage {
  constructor(readonly signal: NodeJS.Signals) {
    super(128 + (constants.signals[signal] ?? 0));
    this.name = 'Interrupted';
  }
}
