/** The servers of the answers' types, regions and subscriptions, listed through ARM (step 2 on). */
import { discover, type DiscoveredDatabase, type DiscoveryResult } from '../../azure/discovery.js';
import { normalizeRegion } from '../../azure/discovery-servers.js';
import { buildConfig, starterConfig } from '../../config/generate.js';
import type { AzdbConfig, DatabaseConfig } from '../../config/schema.js';
import type { SetupAnswers } from '../api/setup.js';
import { chosenTypes, parseList } from './artifacts.js';
import { knownAddress } from './basis.js';
import type { SetupContext } from './context.js';

/** A config whose `discovery:` lists what the answers ask for, in the basis' cloud. */
export function discoveryConfig(sc: SetupContext, answers: SetupAnswers): AzdbConfig {
  const types = chosenTypes(answers);
  const subs = parseList(answers.subscriptions);
  const regions = parseList(answers.regions);
  const input = starterConfig({
    ...(types.includes('postgres') ? { postgresRegion: regions[0] ?? '*' } : {}),
    ...(types.includes('mysql') ? { mysqlRegion: regions[0] ?? '*' } : {}),
    ...(subs.length === 1 ? { subscription: subs[0]! } : {}),
    dbUser: answers.dbUser || 'teleport',
  });
  input.discovery = (input.discovery ?? []).map((m) => ({
    ...m,
    regions: regions.length > 0 ? regions.map((r) => (r === '*' ? r : normalizeRegion(r))) : ['*'],
    subscriptions: subs.length > 0 ? subs : ['*'],
  }));
  input.azure = { ...input.azure, cloud: sc.basis.cloud, ...(sc.basis.armEndpoint ? { resource_manager_endpoint: sc.basis.armEndpoint } : {}) };
  return buildConfig(input, sc.configFile);
}

const listingKey = (answers: SetupAnswers) => JSON.stringify([answers.types, answers.regions, answers.subscriptions]);

export async function listServers(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal): Promise<DiscoveryResult> {
  const result = await discover({ config: discoveryConfig(sc, answers), tokens: sc.tokens, signal });
  sc.found.servers = { key: listingKey(answers), list: result.databases };
  return result;
}

async function listedServers(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal): Promise<DiscoveredDatabase[]> {
  if (sc.found.servers?.key !== listingKey(answers)) await listServers(sc, answers, signal);
  return sc.found.servers?.list ?? [];
}

/** The chosen servers as the broker reaches them: at the address the config in use gives them, else their Azure name. */
export async function chosenServers(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal): Promise<DatabaseConfig[]> {
  const wanted = parseList(answers.servers);
  const list = (await listedServers(sc, answers, signal)).filter((db) => wanted.length === 0 || wanted.includes(db.name));
  return list.map((db) => {
    const known = knownAddress(sc.basis, db);
    return known ? { ...db, uri: known.uri, host: known.host, port: known.port, tls: known.tls } : db;
  });
}

/** Subscriptions for the role's scopes: the answers', else those the servers are in, else a placeholder. */
export async function subscriptionsFor(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal): Promise<string[]> {
  const given = parseList(answers.subscriptions).filter((s) => s !== '*');
  if (given.length > 0) return given;
  const fromServers = (await listedServers(sc, answers, signal).catch(() => [])).map((db) => db.labels['subscription-id']).filter((s): s is string => Boolean(s));
  if (fromServers.length > 0) return [...new Set(fromServers)];
  return sc.env.AZURE_SUBSCRIPTION_ID ? [sc.env.AZURE_SUBSCRIPTION_ID] : ['<subscription-id>'];
}
