/** Step 1: which credential source yields a token here, and the identity it is. */
import type { SourceResult } from '../../../azure/credential-sources.js';
import { which } from '../../../process/exec.js';
import type { StepReport } from '../../api/setup.js';
import { stepReport, writeArtifact, type SetupContext } from '../context.js';
import { probeIdentity } from '../identity.js';

export async function checkCredentials(sc: SetupContext, signal: AbortSignal): Promise<StepReport> {
  const result = await probeIdentity(sc, signal);
  const env = sc.env;
  const az = await which('az', env);
  const detected = [
    `managed identity: ${env.IDENTITY_ENDPOINT ? `identity endpoint ${env.IDENTITY_ENDPOINT}` : env.MSI_ENDPOINT ? `MSI endpoint ${env.MSI_ENDPOINT}` : 'IMDS (only on an Azure VM)'}`,
    `service principal env: ${['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET'].map((n) => `${n} ${env[n] ? 'set' : 'unset'}`).join(', ')}`,
    `Azure CLI: ${az ? az : 'not installed'}`,
  ];
  const sourceLine = (s: SourceResult) => `${s.ok ? 'ok  ' : s.excluded || s.notTried ? 'skip' : 'FAIL'} ${s.name}: ${s.ok ? 'yields a token' : s.detail}`;
  const claims = sc.found.identity?.claims;
  const exportsText = [
    '# Service principal for DefaultAzureCredential (EnvironmentCredential). Fill in the secret yourself:',
    '# azdb never writes it. Keep this file private.',
    `export AZURE_TENANT_ID=${claims?.tenantId ?? env.AZURE_TENANT_ID ?? '<tenant-id>'}`,
    `export AZURE_CLIENT_ID=${env.AZURE_CLIENT_ID ?? claims?.appId ?? '<application-client-id>'}`,
    "export AZURE_CLIENT_SECRET='<client-secret>'",
    '',
  ].join('\n');
  const explain = result.used
    ? `DefaultAzureCredential tries the sources in this order and uses the first that yields a token: ${result.used}.`
    : `DefaultAzureCredential gets no token: ${result.summary}.`;
  // Only on the service-principal path: sourcing a placeholder secret over a working managed
  // identity or CLI login would break it.
  const servicePrincipal = !result.ok || result.used === 'EnvironmentCredential';
  const exportsFile = servicePrincipal ? await writeArtifact(sc, 'exports.sh', exportsText, 0o600) : undefined;
  const lines = [...detected, ...result.sources.map(sourceLine), explain, ...(servicePrincipal ? exportsText.split('\n').filter((l) => l.startsWith('export')) : [])];
  const artifacts = exportsFile ? [{ label: 'exports', path: exportsFile }] : [];
  if (!result.ok) {
    const firstHint = result.sources.find((s) => !s.ok && !s.excluded && !s.notTried && s.hint)?.hint ?? '';
    return stepReport('credentials', 'fail', `no credential source yields a token (${result.summary})`, `${firstHint} On an Azure VM prefer a managed identity; for a service principal fill in and source ${exportsFile ?? 'exports.sh'}.`, lines, artifacts);
  }
  return stepReport('credentials', 'pass', `DefaultAzureCredential uses ${result.used}: object id ${claims?.objectId ?? '?'}, client id ${claims?.appId ?? '?'}, tenant ${claims?.tenantId ?? '?'}`, '', lines, artifacts);
}
