/**
 * What every use-case of the core is given by the front end that calls it: the environment, the
 * `--config` flag as typed, and where to say things that are not results (warnings, progress).
 * The CLI passes its output; the TUI passes a sink that turns them into broker-log notices.
 */
export interface Log {
  info(text: string): void;
  warn(text: string): void;
}

export interface CoreContext {
  env: NodeJS.ProcessEnv;
  /** --config as given (resolved against AZDB_CONFIG and XDG by {@link configPath}). */
  configFlag: string | undefined;
  log: Log;
}

export const SILENT_LOG: Log = { info: () => {}, warn: () => {} };
