#!/usr/bin/env node
/**
 * Summarises a V8 .heapsnapshot (from `AZDB_BENCH_HEAP_SNAPSHOT=1 npm run bench`): self size and
 * count per constructor, so "where does an idle session's memory go" has an answer.
 * Usage: node bench/heap-top.mjs FILE.heapsnapshot [ROWS] [PER]   (PER: divide by this many sessions)
 */
import { readFileSync } from 'node:fs';

const [file, rowsArg, perArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/heap-top.mjs FILE.heapsnapshot [ROWS] [PER]');
  process.exit(2);
}
const { snapshot, nodes, strings } = JSON.parse(readFileSync(file, 'utf8'));
const fields = snapshot.meta.node_fields;
const types = snapshot.meta.node_types[0];
const stride = fields.length;
const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
const totals = new Map();
let all = 0;
for (let i = 0; i < nodes.length; i += stride) {
  const type = types[nodes[i + typeAt]];
  const name = type === 'object' || type === 'native' || type === 'closure' ? `${type}:${strings[nodes[i + nameAt]]}` : `(${type})`;
  const entry = totals.get(name) ?? { size: 0, count: 0 };
  entry.size += nodes[i + sizeAt];
  entry.count += 1;
  totals.set(name, entry);
  all += nodes[i + sizeAt];
}
const per = Number(perArg ?? 1);
console.log(`${(all / 1048576).toFixed(1)} MiB in ${nodes.length / stride} nodes${per > 1 ? `; per ${per}: ${(all / per / 1024).toFixed(1)} KiB` : ''}`);
console.log('   self KiB     count  name');
for (const [name, { size, count }] of [...totals].sort((a, b) => b[1].size - a[1].size).slice(0, Number(rowsArg ?? 40))) {
  console.log(`${(size / 1024).toFixed(1).padStart(11)} ${String(count).padStart(9)}  ${name.slice(0, 90)}`);
}
