/** Step 2: the custom role that lets the identity list the servers, and whether listing works. */
import { serverTypesFor } from '../../../azure/discovery-servers.js';
import type { SetupAnswers, StepReport } from '../../api/setup.js';
import { chosenTypes, discoveryRole, roleCommands, ROLE_NAME, SUBSCRIPTION_READ } from '../artifacts.js';
import { stepReport, writeArtifact, type SetupContext } from '../context.js';
import { ensureIdentity } from '../identity.js';
import { listServers, subscriptionsFor } from '../servers.js';

export async function checkIam(sc: SetupContext, answers: SetupAnswers, signal: AbortSignal): Promise<StepReport> {
  const who = await ensureIdentity(sc, signal);
  const types = chosenTypes(answers);
  const result = await listServers(sc, answers, signal);
  const subs = await subscriptionsFor(sc, answers, signal);
  const roleFile = await writeArtifact(sc, 'role.json', `${JSON.stringify(discoveryRole(types, subs), null, 2)}\n`);
  const clientId = who?.claims?.appId ?? sc.env.AZURE_CLIENT_ID ?? '<client-id>';
  const commands = roleCommands(roleFile, clientId, subs);
  const commandsFile = await writeArtifact(sc, 'role-commands.sh', `${commands.join('\n')}\n`);
  const lines = [
    `role ${ROLE_NAME}: ${serverTypesFor(types).map((t) => t.permission).join(', ')}, ${SUBSCRIPTION_READ}`,
    ...commands,
    ...result.databases.map((db) => `found ${db.name} (${db.labels['engine']}, ${db.labels['region']})`),
    ...result.errors.map((e) => `FAIL ${e.scope}: ${e.reason}${e.permission ? ` — missing ${e.permission}` : ''}`),
  ];
  const artifacts = [{ label: 'role', path: roleFile }, { label: 'commands', path: commandsFile }];
  if (result.errors.length > 0) {
    const missing = [...new Set(result.errors.map((e) => e.permission ?? (e.status === 403 ? SUBSCRIPTION_READ : undefined)).filter((p): p is string => Boolean(p)))];
    return stepReport(
      'iam',
      'fail',
      missing.length > 0 ? `listing the servers was refused: missing ${missing.join(', ')}` : `listing the servers failed: ${result.errors[0]!.reason}`,
      `${result.errors[0]!.hint} Run the commands in ${commandsFile}, then r (role assignments take a few minutes to apply).`,
      lines,
      artifacts,
    );
  }
  if (result.databases.length === 0) {
    return stepReport('iam', 'fail', 'listing works, but no server matches the types, regions and subscriptions chosen', 'Edit the fields (tab, e) or check the servers exist and are Ready.', lines, artifacts);
  }
  return stepReport('iam', 'pass', `discovery lists ${result.databases.length} server(s): ${result.databases.map((d) => d.name).join(', ')}`, '', lines, artifacts);
}
