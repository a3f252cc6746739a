import { UserError } from '../../errors.js';

/** Commands whose capability lands with a later issue say so plainly and exit 1. */
export function notYetAvailable(command: string, capability: string): never {
  throw new UserError(`\`azdb ${command}\` is not available yet: it arrives with ${capability}.`, {
    hint: 'Run `azdb --help` to see what works today, or `azdb demo` to try the emulated setup.',
  });
}
