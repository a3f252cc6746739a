#!/usr/bin/env node
/**
 * The memory an azdb broker process holds before its first client (docs/performance.md, "Base
 * memory"): starts `azdb proxy db NAME` and `azdb serve` (one listener) against a running
 * `azdb demo` (its env file: AZDB_CONFIG, the emulated managed identity, its CA), waits until each
 * is ready, lets it settle (BASE_MEMORY_SETTLE_MS, 15 s) and reads VmRSS and its anonymous and
 * file-backed parts from /proc. Node flags for the children: BASE_MEMORY_NODE_FLAGS (default:
 * those of bin/azdb.js's first line); another build: BASE_MEMORY_BIN=/other/tree/bin/azdb.js.
 *
 *   node bench/base-memory.mjs ENV_FILE [DB=orders] [ROUNDS=3]
 *
 * e.g. with `AZDB_STATE_DIR=/tmp/d azdb --json demo --no-tui` running: ENV_FILE=/tmp/d/demo/env.sh.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';

const [envFile, db = 'orders', roundsText = '3'] = process.argv.slice(2);
if (!envFile) {
  console.error('usage: node bench/base-memory.mjs ENV_FILE [DB] [ROUNDS]');
  process.exit(2);
}
const SETTLE_MS = Number(process.env.BASE_MEMORY_SETTLE_MS ?? 15000);
const BIN = process.env.BASE_MEMORY_BIN ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'azdb.js');
const flags = nodeFlags();
const env = { ...process.env, NO_COLOR: '1' };
for (const line of readFileSync(envFile, 'utf8').split('\n')) {
  const m = /^export (\w+)='(.*)'$/.exec(line);
  if (m) env[m[1]] = m[2];
}
const work = mkdtempSync(join(tmpdir(), 'azdb-base-memory-'));
env.AZDB_STATE_DIR = join(work, 'state');
const serveConfig = join(work, 'serve.yaml');
writeFileSync(serveConfig, readFileSync(env.AZDB_CONFIG, 'utf8') + `  listeners:\n    - {database: ${db}, host: 127.0.0.1, port: ${await freePort()}}\n`);

/** The flags of bin/azdb.js's first line (what `azdb` run as a program gets), unless BASE_MEMORY_NODE_FLAGS says otherwise. */
function nodeFlags() {
  if (process.env.BASE_MEMORY_NODE_FLAGS !== undefined) return process.env.BASE_MEMORY_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const shebang = readFileSync(BIN, 'utf8').split('\n')[0];
  return (/\bnode((?: --[\w-]+(?:=\S+)?)*)\s*$/.exec(shebang)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

function status(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)[1]);
  return { rssMiB: kib('VmRSS') / 1024, anonMiB: kib('RssAnon') / 1024, fileMiB: kib('RssFile') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

/** `text` without the tunnel password that `proxy db --json` prints (in its uri too). */
function withoutPassword(text, json) {
  const secrets = [];
  for (const line of json.split('\n')) {
    try {
      const { password } = JSON.parse(line);
      if (typeof password === 'string' && password) secrets.push(password, encodeURIComponent(password));
    } catch {
      // not the JSON line
    }
  }
  return secrets.reduce((clean, secret) => clean.split(secret).join('<password>'), text);
}

async function measure(label, args, ready) {
  const child = spawn(process.execPath, [...flags, BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const deadline = Date.now() + 60_000;
  while (!ready(out, err)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGTERM'); // not left running behind a failed measurement
      throw new Error(`${label} did not become ready (exit ${child.exitCode}):\n${withoutPassword(`${err}\n${out}`, out)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // V8's memory reducer gives start-up garbage back some seconds after the last allocation.
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const s = status(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return { label, ...s };
}

// A first run creates what later runs find (the local CA of the tunnels): not measured.
await measure('warm-up', ['proxy', 'db', db, '--json'], (o) => o.includes('\n'));
const rows = [];
for (let round = 0; round < Number(roundsText); round += 1) {
  rows.push(await measure('proxy db', ['proxy', 'db', db, '--json'], (o) => o.includes('\n')));
  rows.push(await measure('serve (1 listener)', ['--config', serveConfig, 'serve'], (_o, e) => e.includes('"listener.up"')));
}
for (const r of rows) console.log(`${r.label.padEnd(20)} RSS ${r.rssMiB.toFixed(1)} MiB (anon ${r.anonMiB.toFixed(1)}, file ${r.fileMiB.toFixed(1)})  peak ${r.hwmMiB.toFixed(1)} MiB`);
rmSync(work, { recursive: true, force: true });
