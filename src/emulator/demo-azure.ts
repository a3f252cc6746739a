/** The emulated Azure as `azdb demo` uses it (the shape of src/core/demo.ts's DemoAzure). */
import { DEMO_IDENTITY } from './demo-identity.js';
import { startEmulatedAzure } from './emulated-azure.js';

export async function startDemoAzure(options: { dir: string; onProgress: (message: string) => void; signal: AbortSignal }) {
  // Stable across restarts: configs and shells set up against one start work with the next.
  const azure = await startEmulatedAzure({ ...options, stableAddresses: true });
  return {
    caFile: azure.caFile,
    armEndpoint: azure.armEndpoint,
    servers: azure.servers,
    hasMySql: azure.realMariaDb !== undefined,
    dbUser: DEMO_IDENTITY.role,
    identityEnv: () => azure.identity.env(),
    stop: () => azure.stop(),
  };
}
