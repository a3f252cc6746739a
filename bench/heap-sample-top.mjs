#!/usr/bin/env node
/**
 * Summarises a bench/heap-sample.mjs file: bytes allocated per relayed round trip by the function
 * that allocated them (self), and by azdb's functions with what they called (inclusive).
 *   node bench/heap-sample-top.mjs FILE [ROWS=35]
 */
import { readFileSync } from 'node:fs';

const [file, rowsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/heap-sample-top.mjs FILE [ROWS]');
  process.exit(2);
}
const rows = Number(rowsArg ?? 35);
const { roundTrips, profile } = JSON.parse(readFileSync(file, 'utf8'));
const self = new Map();
const inclusive = new Map();
let total = 0;
const name = (frame) => `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace('file://', '')}:${frame.lineNumber + 1}`;

function walk(node, stack) {
  const key = name(node.callFrame);
  let sum = node.selfSize;
  self.set(key, (self.get(key) ?? 0) + node.selfSize);
  total += node.selfSize;
  const inner = stack.includes(key) ? stack : [...stack, key];
  for (const child of node.children) sum += walk(child, inner);
  // A recursive function counts once.
  if (!stack.includes(key)) inclusive.set(key, (inclusive.get(key) ?? 0) + sum);
  return sum;
}
walk(profile.head, []);

const per = (bytes) => `${(bytes / roundTrips).toFixed(0).padStart(7)} B`;
console.log(`${roundTrips} round trips, ${(total / 1e6).toFixed(1)} MB sampled: ${per(total).trim()} per round trip`);
console.log('\nself, per round trip:');
for (const [key, bytes] of [...self].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(per(bytes), key);
console.log("\ninclusive, azdb's functions (dist/), per round trip:");
for (const [key, bytes] of [...inclusive].filter(([key]) => key.includes('dist/')).sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(per(bytes), key);
