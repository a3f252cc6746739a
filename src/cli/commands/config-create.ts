/**
 * `azdb config create`: a starter azdb.yaml with ARM discovery and the guide's role, as
 * `teleport db configure create` writes teleport.yaml. Refuses to overwrite without `--force`;
 * `-o -` prints it instead. What it writes always passes `azdb config check`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { buildConfig, renderConfig, starterConfig, type StarterOptions } from '../../config/generate.js';
import { resolveConfigPath } from '../../config/paths.js';
import { UserError } from '../../errors.js';
import type { CliContext } from '../context.js';

export interface ConfigCreateFlags {
  output?: string;
  azurePostgresDiscovery?: string;
  azureMysqlDiscovery?: string;
  subscription?: string;
  resourceGroup?: string;
  tag: string[];
  force?: boolean;
}

const HEADER = [
  'azdb configuration, written by `azdb config create`.',
  'discovery: finds Azure Database for PostgreSQL / MySQL servers through ARM (the identity needs the',
  'read actions of the discovery role: Microsoft.DBforPostgreSQL/servers/read, .../flexibleServers/read,',
  'Microsoft.DBforMySQL/servers/read, .../flexibleServers/read).',
  'roles: who may log in as which database user; `teleport` is the Entra database user of the guide.',
  'Check it with `azdb config check`, then list what it finds with `azdb db ls`.',
].join('\n');

export async function configCreate(ctx: CliContext, flags: ConfigCreateFlags): Promise<void> {
  const options: StarterOptions = {
    ...(flags.azurePostgresDiscovery !== undefined ? { postgresRegion: requireValue('--azure-postgres-discovery', flags.azurePostgresDiscovery) } : {}),
    ...(flags.azureMysqlDiscovery !== undefined ? { mysqlRegion: requireValue('--azure-mysql-discovery', flags.azureMysqlDiscovery) } : {}),
    ...(flags.subscription !== undefined ? { subscription: requireValue('--subscription', flags.subscription) } : {}),
    ...(flags.resourceGroup !== undefined ? { resourceGroup: requireValue('--resource-group', flags.resourceGroup) } : {}),
    tags: parseTags(flags.tag),
  };
  const input = starterConfig(options);
  const text = renderConfig(input, { header: HEADER });
  const toStdout = flags.output === '-';
  const file = toStdout ? '<stdout>' : resolve(flags.output ?? resolveConfigPath({ flag: ctx.configFlag, env: ctx.env, homedir: homedir() }));
  // What is written must read back: a bad flag value surfaces here, not at the next command.
  buildConfig(input, file);

  if (toStdout) {
    process.stdout.write(text);
    return;
  }
  await mkdir(dirname(file), { recursive: true });
  try {
    await writeFile(file, text, { flag: flags.force ? 'w' : 'wx', mode: 0o644 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new UserError(`${file} already exists; not overwriting it`, { hint: 'Pass --force to replace it, or -o FILE to write elsewhere.' });
    }
    if (code === 'EISDIR') throw new UserError(`${file} is a directory`, { hint: 'Pass -o with a file name such as azdb.yaml.' });
    if (code === 'EACCES' || code === 'EPERM') throw new UserError(`cannot write ${file}: permission denied`, { hint: 'Pass -o FILE somewhere you can write.' });
    throw error;
  }
  const matchers = input.discovery ?? [];
  if (ctx.out.json) {
    ctx.out.document({ ok: true, file, discovery: matchers, roles: (input.roles ?? []).map((r) => r.metadata.name) });
    return;
  }
  ctx.out.line(`Wrote ${file}`);
  for (const m of matchers) {
    ctx.out.line(`  discovery: ${m.types.join(', ')} in ${m.regions?.join(', ')}; subscriptions ${m.subscriptions?.join(', ')}; resource groups ${m.resource_groups?.join(', ')}`);
  }
  ctx.out.line(`Next: \`azdb config check\`, then \`azdb db ls\`.`);
}

function requireValue(flag: string, value: string): string {
  if (value.trim() === '') throw new UserError(`${flag} needs a value`, { usage: true });
  return value.trim();
}

function parseTags(values: readonly string[]): Record<string, string[]> {
  const tags: Record<string, string[]> = {};
  for (const value of values) {
    const at = value.indexOf('=');
    const key = at > 0 ? value.slice(0, at).trim() : '';
    if (key === '') throw new UserError(`--tag expects KEY=VALUE, got "${value}"`, { usage: true, hint: 'For example --tag env=prod (repeat --tag for more).' });
    const tag = value.slice(at + 1).trim();
    const list = (tags[key] ??= []);
    if (!list.includes(tag)) list.push(tag);
  }
  return tags;
}
