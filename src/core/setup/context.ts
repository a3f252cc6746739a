/**
 * What every setup step works with: where the config and the artifacts go, what setup starts
 * from, the credential's token cache for the database scope, the credential probe, the admin's
 * token sources, and what earlier steps found (the identity, the server listing).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CredsDeps } from '../../azure/credential-sources.js';
import type { DiscoveredDatabase } from '../../azure/discovery.js';
import type { TokenCache } from '../../azure/token-cache.js';
import type { TokenClaims } from '../../azure/token-claims.js';
import type { Artifact, StepId, StepReport } from '../api/setup.js';
import type { AdminTokenSource } from './admin-sql.js';
import type { SetupBasis } from './basis.js';

export interface Identity {
  source: string;
  claims: TokenClaims | undefined;
}

export interface SetupContext {
  env: NodeJS.ProcessEnv;
  /** The config file step 4 writes (absolute). */
  configFile: string;
  /** Where the artifacts go (`$AZDB_STATE_DIR/setup`). */
  artifactDir: string;
  basis: SetupBasis;
  /** DefaultAzureCredential's tokens, for ARM and the database scope. */
  tokens: TokenCache;
  /** The database scope of the basis' cloud. */
  scope: string;
  credsDeps: CredsDeps;
  /** Whose token the principal SQL runs with, in the order to try. */
  adminTokenSources(): Promise<AdminTokenSource[]>;
  /** Found by earlier steps, reused by later ones. */
  found: { identity?: Identity; servers?: { key: string; list: DiscoveredDatabase[] } };
}

export async function writeArtifact(sc: SetupContext, name: string, text: string, mode = 0o644): Promise<string> {
  await mkdir(sc.artifactDir, { recursive: true, mode: 0o700 });
  const path = join(sc.artifactDir, name);
  await writeFile(path, text, { mode });
  await chmod(path, mode);
  return path;
}

export function stepReport(step: StepId, status: 'pass' | 'fail', detail: string, hint = '', lines: string[] = [], artifacts: Artifact[] = []): StepReport {
  return { step, status, detail, hint, lines, artifacts };
}
