#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile (from `AZDB_BENCH_PROFILE=1 npm run bench`): self time per function,
 * and the share spent in native code, GC and idle, so "where does the time go" has an answer.
 * Usage: node bench/profile-top.mjs FILE.cpuprofile [ROWS]
 */
import { readFileSync } from 'node:fs';

const [file, rowsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-top.mjs FILE.cpuprofile [ROWS]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map();
const deltas = profile.timeDeltas;
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i] ?? 0));
}
const totals = new Map();
let all = 0;
for (const [id, us] of selfUs) {
  const { callFrame } = byId.get(id);
  const where = callFrame.url ? `${callFrame.url.replace(/^.*\/(node_modules|dist|node:)/, '$1')}:${callFrame.lineNumber + 1}` : '';
  const key = `${callFrame.functionName || '(anonymous)'} ${where}`.trim();
  totals.set(key, (totals.get(key) ?? 0) + us);
  all += us;
}
const idle = totals.get('(idle)') ?? 0;
const busy = all - idle;
console.log(`${(all / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (${((100 * busy) / all).toFixed(1)} %)`);
console.log('self ms   % busy  function');
for (const [key, us] of [...totals].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, Number(rowsArg ?? 30))) {
  console.log(`${(us / 1000).toFixed(1).padStart(8)}  ${((100 * us) / busy).toFixed(1).padStart(6)}  ${key}`);
}
