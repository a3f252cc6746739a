/** Which identity DefaultAzureCredential uses here (step 1), remembered for the later steps. */
import { probeCredentials, type CredsReport } from '../../azure/credential-sources.js';
import type { Identity, SetupContext } from './context.js';

export async function probeIdentity(sc: SetupContext, signal: AbortSignal): Promise<CredsReport> {
  const report = await probeCredentials(
    { cloud: sc.basis.cloud, env: sc.env, ...(sc.basis.managedIdentityClientId ? { managedIdentityClientId: sc.basis.managedIdentityClientId } : {}) },
    sc.credsDeps,
    signal,
  );
  const used = report.sources.find((s) => s.name === report.used);
  sc.found.identity = used ? { source: used.name, claims: used.claims } : undefined;
  return report;
}

export async function ensureIdentity(sc: SetupContext, signal: AbortSignal): Promise<Identity | undefined> {
  if (!sc.found.identity) await probeIdentity(sc, signal);
  return sc.found.identity;
}
