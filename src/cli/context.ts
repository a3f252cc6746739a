import type { CoreContext } from '../core/context.js';
import type { StartDemoAzure } from '../core/demo.js';
import type { Output } from './output.js';

/** What a command gets: the core's context, whose log is the command's own output. */
export interface CliContext extends CoreContext {
  out: Output;
  /** What `azdb demo` starts; given by the entry point (src/azdb.ts), absent in a build without the emulator. */
  startDemoAzure?: StartDemoAzure;
}

/** What the entry point plugs into the CLI. */
export interface CliPlugins {
  startDemoAzure?: StartDemoAzure;
}

/**
 * A hint that names an azdb command, for this run: with `--config FILE` in every `azdb …` it
 * names, so following it uses the same config (the layers below do not know the flag).
 */
export function hintFor(text: string, configFlag: string | undefined): string {
  if (!configFlag) return text;
  const flag = /^[\w./~-]+$/.test(configFlag) ? configFlag : `'${configFlag.replace(/'/g, `'\\''`)}'`;
  return text.replace(/`azdb (?!--config )/g, `\`azdb --config ${flag} `);
}

/** A context whose results, warnings and progress go to `out`. */
export function cliContext(out: Output, env: NodeJS.ProcessEnv, configFlag: string | undefined, plugins: CliPlugins = {}): CliContext {
  return { out, log: out, env, configFlag, ...(plugins.startDemoAzure ? { startDemoAzure: plugins.startDemoAzure } : {}) };
}
