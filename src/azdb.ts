/**
 * The program as bin/azdb.js runs it: the CLI, with the emulated Azure of `azdb demo` plugged in.
 * Only this file wires the emulator in; production code (core, cli, broker) never imports it.
 */
import type { StartDemoAzure } from './core/demo.js';
import { main as cliMain } from './cli/main.js';

// Loaded only when `azdb demo` starts: it brings the embedded PostgreSQL and the emulator.
const startDemoAzure: StartDemoAzure = async (options) => (await import('./emulator/demo-azure.js')).startDemoAzure(options);

export function main(argv: string[]): Promise<number> {
  return cliMain(argv, {}, { startDemoAzure });
}
