#!/usr/bin/env node
/**
 * What each module costs a process that loads it (docs/performance.md, "Base memory"): imports the
 * given specifiers one after another in this process and prints RSS (anonymous and file-backed),
 * heap and external memory after each, with two full GCs first. Order matters: a module's line
 * shows only what the ones before it did not already load. `cjs:NAME` requires NAME instead.
 *
 *   node --expose-gc --max-semi-space-size=1 bench/import-memory.mjs node:tls ../dist/broker/tunnel.js @azure/identity
 *
 * Relative paths are resolved from bench/; packages from the repository's node_modules.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const mib = (bytes) => (bytes / 1048576).toFixed(1);

function report(label) {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  console.log(
    `${label.padEnd(44)} RSS ${mib(m.rss)} (anon ${mib(kib('RssAnon') * 1024)}, file ${mib(kib('RssFile') * 1024)})` +
      `  heap used ${mib(m.heapUsed)} / total ${mib(m.heapTotal)}  external ${mib(m.external)} MiB`,
  );
}

if (!globalThis.gc) console.error('(run with --expose-gc for numbers after a full GC)');
report('start');
for (const specifier of process.argv.slice(2)) {
  if (specifier.startsWith('cjs:')) require(specifier.slice(4));
  else await import(specifier);
  report(specifier);
}
