/**
 * `azdb pools`: asks the running `azdb serve` of this config (its `broker.http.address`) for
 * its connection pools, over the /pools endpoint.
 */
import type { PoolsReport } from '../broker/serve.js';
import { formatHost, parseHostPort } from '../config/address.js';
import { loadConfig } from '../config/load.js';
import { ExternalError, UserError, errorMessage } from '../errors.js';
import type { CoreContext } from './context.js';
import { configPath } from './runtime.js';

export type { PoolsReport };

const REQUEST_TIMEOUT_MS = 5_000;

export async function fetchPools(ctx: CoreContext): Promise<PoolsReport> {
  const config = await loadConfig(configPath(ctx));
  const address = config.broker.http.address;
  if (address === undefined) {
    throw new UserError('azdb pools asks a running `azdb serve`, but the config has no broker.http.address', {
      hint: 'Set broker.http.address (e.g. 127.0.0.1:9187) in azdb.yaml and run `azdb serve` with it.',
    });
  }
  const endpoint = parseHostPort(address);
  if (!endpoint.ok) throw new UserError(`broker.http.address: ${endpoint.reason}`);
  const url = `http://${formatHost(endpoint.host)}:${endpoint.port}/pools`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    throw new UserError(`no azdb serve answers on ${address}: ${errorMessage(error)}`, { hint: 'Start `azdb serve` with this config, or check broker.http.address.' });
  }
  if (!response.ok) throw new ExternalError(`${url} answered HTTP ${response.status}; is it an azdb serve of this version?`);
  return (await response.json()) as PoolsReport;
}
