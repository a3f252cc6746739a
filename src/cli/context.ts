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

/** A context whose results, warnings and progress go to `out`. */
export function cliContext(out: Output, env: NodeJS.ProcessEnv, configFlag: string | undefined, plugins: CliPlugins = {}): CliContext {
  return { out, log: out, env, configFlag, ...(plugins.startDemoAzure ? { startDemoAzure: plugins.startDemoAzure } : {}) };
}
