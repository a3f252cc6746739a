import { homedir } from 'node:os';
import { resolveConfigPath } from '../../config/paths.js';
import { ConfigError, formatIssue, loadConfig } from '../../config/load.js';
import { listenerPasswordFileIssues } from '../../core/listener-password-check.js';
import { ExitWithoutMessage } from '../exit.js';
import type { CliContext } from '../context.js';

/** `azdb config check`: OK, or every error with file:line:col (the ConfigError carries them). */
export async function configCheck(ctx: CliContext): Promise<void> {
  const file = resolveConfigPath({ flag: ctx.configFlag, env: ctx.env, homedir: homedir() });
  let config;
  let passwordFiles;
  try {
    config = await loadConfig(file);
    passwordFiles = await listenerPasswordFileIssues(config);
    if (passwordFiles.errors.length > 0) throw new ConfigError(passwordFiles.errors);
  } catch (error) {
    if (ctx.out.json && error instanceof ConfigError) {
      ctx.out.document({ ok: false, file, errors: error.errors.map((e) => ({ ...e, text: formatIssue(e) })) });
      throw new ExitWithoutMessage(1);
    }
    throw error;
  }
  const warnings = [...config.warnings, ...passwordFiles.warnings].map(formatIssue);
  for (const warning of warnings) ctx.out.warn(warning);
  if (ctx.out.json) {
    ctx.out.document({ ok: true, file, databases: config.databases.length, roles: config.roles.length, warnings });
  } else {
    ctx.out.line(`OK: ${file} (${config.databases.length} databases, ${config.roles.length} roles)`);
  }
}
