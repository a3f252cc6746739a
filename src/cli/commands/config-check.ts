import { homedir } from 'node:os';
import { resolveConfigPath } from '../../config/paths.js';
import { loadConfig } from '../../config/load.js';
import type { CliContext } from '../main.js';

/** `azdb config check`: OK, or every error with file:line:col (the error carries them). */
export async function configCheck(ctx: CliContext): Promise<void> {
  const file = resolveConfigPath({ flag: ctx.configFlag, env: ctx.env, homedir: homedir() });
  const config = await loadConfig(file);
  const warnings = insecureDatabases(config.databases);
  for (const name of warnings) ctx.out.warn(`database "${name}" uses tls.mode insecure: its server certificate is not verified`);
  if (ctx.out.json) {
    ctx.out.document({ ok: true, file, databases: config.databases.length, roles: config.roles.length, warnings: warnings.map((n) => `${n}: tls.mode insecure`) });
  } else {
    ctx.out.line(`OK: ${file} (${config.databases.length} databases, ${config.roles.length} roles)`);
  }
}

function insecureDatabases(databases: ReadonlyArray<{ name: string; tls?: { mode?: string } }>): string[] {
  return databases.filter((d) => d.tls?.mode === 'insecure').map((d) => d.name);
}
