import type { CoreContext } from '../core/context.js';
import type { Output } from './output.js';

/** What a command gets: the core's context, whose log is the command's own output. */
export interface CliContext extends CoreContext {
  out: Output;
}

/** A context whose results, warnings and progress go to `out`. */
export function cliContext(out: Output, env: NodeJS.ProcessEnv, configFlag: string | undefined): CliContext {
  return { out, log: out, env, configFlag };
}
