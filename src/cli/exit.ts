/** Ends a command with an exit code after it has already said everything (e.g. a --json document). */
export class ExitWithoutMessage extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitWithoutMessage';
  }
}
