/**
 * The real MariaDB behind the emulated Azure Database for MySQL servers, from the Debian package
 * (`mariadb-server`), as an unprivileged temporary instance: its own data folder, no config files
 * (`--no-defaults`) and no TCP listener, only a Unix socket inside the state folder, so the only
 * way in from outside is through the emulator's TLS + token front, as with Azure. The first start
 * creates the data folder; later starts reuse it.
 */
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import mysql from 'mysql2/promise';
import { ExternalError, UserError, errorMessage } from '../errors.js';
import { isAlive } from '../process/alive.js';
import { run, spawnProcess, which } from '../process/exec.js';
import { pathExists, requireTraversable, stopProcess, systemUserIds } from './server-process.js';

export interface RealMariaDbOptions {
  /** Folder for data, socket and log; created if missing. */
  dir: string;
  /** Time allowed for the server to accept connections. @default 60_000 */
  startTimeoutMs?: number;
  /** More server options, after the defaults (later options win: `--skip-networking=0` turns TCP on). */
  serverArgs?: readonly string[];
}

export interface RealMariaDb {
  /** The server's only listener. */
  socketPath: string;
  /** A raw socket to the server, for the front to join a client to. */
  connectRaw(): Socket;
  /** Runs SQL as the administrator (placeholders `?` are escaped client-side); returns the result. */
  query<T = mysql.RowDataPacket[]>(sql: string, params?: unknown[]): Promise<T>;
  stop(): Promise<void>;
}

/** The system user Debian's package creates; mariadbd refuses to run as root without `--user`. */
const SERVICE_USER = 'mysql';
const SEARCH_PATH = [process.env.PATH ?? '', '/usr/sbin', '/usr/local/sbin', '/usr/bin'].join(':');
/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;
const INITIALISED_MARKER = '.azdb-initialised';
const STOP_TIMEOUT_MS = 30_000;
const POLL_MS = 25;
const LOG_TAIL_LINES = 15;

/** Settings for a small, fast, throw-away server: nothing here needs durability. */
const SERVER_SETTINGS = [
  '--skip-networking',
  '--skip-name-resolve',
  '--skip-log-bin',
  '--performance-schema=OFF',
  '--character-set-server=utf8mb4',
  '--collation-server=utf8mb4_general_ci',
  '--innodb-buffer-pool-size=32M',
  '--innodb-log-file-size=16M',
  '--innodb-flush-log-at-trx-commit=0',
  '--skip-innodb-doublewrite',
  '--max-connections=1200',
  // The front holds the upstream connection open while its client does TLS and answers the
  // password request; its own deadline (30 s) must be the one that ends a slow login.
  '--connect-timeout=60',
  '--lc-messages=en_US',
];

/** Where mariadbd is, or undefined when the package is not installed. */
export function findMariaDbServer(): Promise<string | undefined> {
  return which('mariadbd', { PATH: SEARCH_PATH });
}

export async function startRealMariaDb(options: RealMariaDbOptions): Promise<RealMariaDb> {
  const server = await findMariaDbServer();
  if (!server) throw new UserError('mariadbd is not installed', { hint: 'Debian/Ubuntu: apt-get install mariadb-server' });
  const dataDir = join(options.dir, 'data');
  const runDir = join(options.dir, 'run');
  const socketPath = join(runDir, 'mysqld.sock');
  const pidFile = join(runDir, 'mariadbd.pid');
  const errorLog = join(runDir, 'mariadbd.err');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new UserError(`the MariaDB socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes`, {
      hint: 'Point AZDB_STATE_DIR at a shorter folder.',
    });
  }

  const owner = process.getuid?.() === 0 ? await serviceUser() : undefined;
  // A temporary folder of its own: the environment's TMPDIR may be closed to the service user.
  const tmpDir = join(options.dir, 'tmp');
  await mkdir(runDir, { recursive: true });
  await mkdir(tmpDir, { recursive: true });
  if (owner) {
    await chmod(options.dir, 0o755);
    await requireTraversable(dirname(options.dir), `MariaDB runs as the \`${SERVICE_USER}\` user`);
    await chown(runDir, owner.uid, owner.gid);
    await chown(tmpDir, owner.uid, owner.gid);
  }
  await chmod(runDir, 0o700);
  await chmod(tmpDir, 0o700);
  await stopOrphanedServer(pidFile, dataDir);

  const marker = join(options.dir, INITIALISED_MARKER);
  if (!(await pathExists(marker))) {
    // Half-made by an interrupted first start, or never made: start from nothing.
    await rm(dataDir, { recursive: true, force: true });
    await initialise(dataDir, tmpDir, owner);
    await writeFile(marker, '');
  }

  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${socketPath}`,
    `--pid-file=${pidFile}`,
    `--log-error=${errorLog}`,
    `--tmpdir=${tmpDir}`,
    ...(owner ? [`--user=${SERVICE_USER}`] : []),
    ...SERVER_SETTINGS,
    ...(options.serverArgs ?? []),
  ];
  const logStart = await sizeOf(errorLog);
  const child = spawnProcess(server, args);
  let exited = false;
  const exit = child.then(() => {
    exited = true;
  });
  const attached = attachRealMariaDb(socketPath);
  try {
    const answers = () => attached.query('SELECT 1').then(() => true, () => false);
    await waitUntil(answers, () => exited, Date.now() + (options.startTimeoutMs ?? 60_000));
  } catch (error) {
    await attached.stop();
    if (!exited) child.kill('SIGKILL');
    await exit;
    throw new ExternalError(`MariaDB did not start: ${errorMessage(error)}\n${await logTail(errorLog, logStart)}`, {
      hint: `See ${errorLog}; remove ${options.dir} to start from a fresh data folder.`,
      cause: error,
    });
  }

  return {
    ...attached,
    async stop() {
      await attached.stop();
      if (exited || child.pid === undefined) return;
      try {
        process.kill(child.pid, 'SIGTERM'); // a clean shutdown; mariadbd ignores SIGINT
      } catch {
        // already gone (stopped as an orphan by another start)
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * A handle on a MariaDB some other process started (the test harness's), by its socket path.
 * `stop()` only closes this handle's connections.
 */
export function attachRealMariaDb(socketPath: string): RealMariaDb {
  let pool: mysql.Pool | undefined;
  const getPool = (): mysql.Pool => {
    // The administrator is the account mariadb-install-db made for the OS user (unix_socket auth).
    pool ??= mysql.createPool({ socketPath, user: userInfo().username, connectionLimit: 2, multipleStatements: true });
    return pool;
  };
  return {
    socketPath,
    connectRaw: () => connect(socketPath),
    async query<T>(sql: string, params: unknown[] = []) {
      const [result] = await getPool().query(sql, params);
      return result as T;
    },
    async stop() {
      const closing = pool;
      pool = undefined;
      await closing?.end().catch(() => {});
    },
  };
}

async function initialise(dataDir: string, tmpDir: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const installer = await which('mariadb-install-db', { PATH: SEARCH_PATH });
  if (!installer) throw new UserError('mariadb-install-db is not installed', { hint: 'Debian/Ubuntu: apt-get install mariadb-server' });
  const result = await run(installer, [
    '--no-defaults',
    `--datadir=${dataDir}`,
    // No password anywhere: the administrator is the OS user, checked by the server on the socket.
    '--auth-root-authentication-method=socket',
    `--auth-root-socket-user=${userInfo().username}`,
    '--skip-test-db',
    '--skip-name-resolve',
    ...(owner ? [`--user=${SERVICE_USER}`] : []),
    '--innodb-buffer-pool-size=32M',
    '--innodb-log-file-size=16M',
    '--skip-log-bin',
    `--tmpdir=${tmpDir}`,
  ]);
  if (result.exitCode !== 0) {
    throw new ExternalError(`mariadb-install-db failed (exit ${result.exitCode}): ${lastLines(`${result.stdout}\n${result.stderr}`)}`, {
      hint: `The installer's own words are above: the file or folder it names must be writable${owner ? ` by the \`${SERVICE_USER}\` user` : ''} (its data is ${dataDir}, its temporary files ${tmpDir}).`,
    });
  }
}

/** The socket appears once the server is ready; until then a query fails at once. The child exiting first is a failure. */
async function waitUntil(answers: () => Promise<boolean>, hasExited: () => boolean, deadline: number): Promise<void> {
  for (;;) {
    if (await answers()) return;
    if (hasExited()) throw new Error('mariadbd exited');
    if (Date.now() > deadline) throw new Error('timed out waiting for mariadbd to accept connections');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * A server left running by an azdb that was killed (SIGKILL skips every exit hook) holds the data
 * folder's lock; it is ours (its command line names our data folder), so stop it rather than fail.
 */
async function stopOrphanedServer(pidFile: string, dataDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(await readFile(pidFile, 'utf8'), 10);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!commandLine.includes(`--datadir=${dataDir}\0`)) return;
  await stopProcess(pid, 'SIGTERM', `an earlier MariaDB on ${dataDir}`, STOP_TIMEOUT_MS);
}

async function serviceUser(): Promise<{ uid: number; gid: number }> {
  const ids = await systemUserIds(SERVICE_USER);
  if (!ids) {
    throw new UserError(`MariaDB will not run as root and there is no \`${SERVICE_USER}\` user to run it as`, {
      hint: `Install Debian's mariadb-server (it creates the user), or run azdb as an ordinary user.`,
    });
  }
  return ids;
}


async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/** The end of what this start wrote to the error log (it keeps earlier starts' lines). */
async function logTail(path: string, from: number | undefined): Promise<string> {
  const text = (await readFile(path).catch(() => Buffer.alloc(0))).subarray(from ?? 0).toString('utf8');
  return text.trim() === '' ? '(nothing in the error log)' : lastLines(text);
}

function lastLines(text: string): string {
  return text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
}
