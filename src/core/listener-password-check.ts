/**
 * `azdb config check` reads every listener's `password_file` as `azdb serve` will, so a weak or
 * world-readable one is found before the broker starts. A file that is missing or unreadable here
 * is only a warning: the config may be checked where the secret is not mounted.
 */
import { PasswordFileUnreadable, readPasswordFile } from '../broker/password-file.js';
import { listenerLabel } from '../broker/serve.js';
import type { AzdbConfig, ConfigIssue } from '../config/schema.js';
import { UserError } from '../errors.js';

export async function listenerPasswordFileIssues(config: Pick<AzdbConfig, 'broker'>): Promise<{ errors: ConfigIssue[]; warnings: ConfigIssue[] }> {
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  for (const [index, listener] of config.broker.listeners.entries()) {
    if (listener.password_file === undefined) continue;
    const issue = (message: string): ConfigIssue => ({ ...listener.source, path: `broker.listeners[${index}].password_file`, message });
    try {
      const read = await readPasswordFile(listener.password_file, listenerLabel(listener));
      if (read.warning) warnings.push(issue(read.warning));
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      const message = error.hint ? `${error.message}; ${error.hint}` : error.message;
      (error instanceof PasswordFileUnreadable ? warnings : errors).push(issue(message));
    }
  }
  return { errors, warnings };
}
