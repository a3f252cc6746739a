/**
 * `azdb proxy db`, `azdb db connect` and `azdb db logout` for MySQL databases as a user runs them:
 * the built CLI as a child process, a config pointing at the emulated Azure Database for MySQL
 * over the run's real MariaDB, the real mariadb client and mysql2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { BIN, cliEnv, emulatedDatabase, requireBuild, runAzdb, startProxy as startProxyIn, writeEmulatedConfig } from '../helpers/cli.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { JWT } from '../helpers/broker-fixtures.js';

const mariadbd = await findTool('mariadbd');
const client = await findTool('mariadb', ['mysql']);

let azure: EmulatedAzure & { dir: string };
let work: string;
let env: Record<string, string>;
/** A port nothing listens on: the server of `down-mysql`. */
let downPort: number;

/** The emulated servers, one MySQL database whose server is down, and one whose certificate names another host. */
function writeConfig(file: string): Promise<void> {
  const shopdb = emulatedDatabase(azure, azure.servers.find((s) => s.name === 'shopdb')!);
  return writeEmulatedConfig(file, azure, {
    databases: [
      ...azure.servers.map((s) => emulatedDatabase(azure, s)),
      { ...shopdb, name: 'down-mysql', uri: `127.0.0.1:${downPort}` },
      { ...shopdb, name: 'misnamed-mysql', tls: { ...shopdb.tls, server_name: 'shopdb.postgres.database.azure.com' } },
    ],
    role: 'dev',
    allow: { db_users: [DEMO_IDENTITY.role], db_names: ['*'] },
    broker: { audit: { path: join(work, 'audit.jsonl'), queries: true } },
  });
}

const startProxy = (args: string[]) => startProxyIn(args, env);

function processlist(marker: string): Promise<unknown[]> {
  return azure.realMariaDb!.query('select id from information_schema.processlist where info like ? and info not like ?', [`%${marker}%`, '%information_schema%']);
}

describe.skipIf(mariadbd.skip)('MySQL databases through the azdb CLI', () => {
  beforeAll(async () => {
    requireBuild();
    azure = await startTestAzure();
    work = await mkdtemp(join(tmpdir(), 'azdb-cli-mysql-'));
    downPort = await freePort();
    env = cliEnv(azure.identity.env(), work);
    await writeConfig(env.AZDB_CONFIG!);
  });

  afterAll(async () => {
    await azure?.stop();
  });

  describe('azdb proxy db', () => {
    it('prints the contract JSON line, serves mysql2 text and prepared queries, and stops on SIGINT', async () => {
      const { child, info, stdout } = await startProxy(['shopdb', '--db-name', 'shop']);
      expect(Object.keys(info)).toEqual(['name', 'protocol', 'host', 'port', 'user', 'database', 'password', 'uri']);
      expect(info).toMatchObject({ name: 'shopdb', protocol: 'mysql', host: '127.0.0.1', user: DEMO_IDENTITY.role, database: 'shop' });
      expect(info.uri).toBe(`mysql://${DEMO_IDENTITY.role}@127.0.0.1:${info.port}/shop`);
      const c = await mysql.createConnection({ host: info.host as string, port: info.port as number, user: info.user as string, password: info.password as string, database: 'shop' });
      const [[row]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user, count(*) > 0 as has from customers');
      expect(row).toEqual({ user: `${DEMO_IDENTITY.role}@%`, has: 1 });
      const [prepared] = await c.execute<mysql.RowDataPacket[]>('select ? * 2 as doubled', [21]);
      expect(prepared[0]!.doubled).toBe(42);
      await c.end();
      child.kill('SIGINT');
      const result = await child;
      expect(result.exitCode).toBe(0);
      expect(stdout().trim().split('\n')).toHaveLength(1);
      const audit = await readFile(join(work, 'audit.jsonl'), 'utf8');
      expect(audit).toContain('"protocol":"mysql"');
      expect(audit).toContain('select current_user() as user, count(*) > 0 as has from customers');
      expect(audit).toContain('"kind":"prepare"');
      expect(audit).not.toContain(info.password as string);
      expect(audit).not.toMatch(JWT);
    });

    it('defaults to no database when the roles allow any name, and logs in as user@server on a single server', async () => {
      const { child, info } = await startProxy(['legacy-mysql']);
      expect(info.database).toBe('');
      expect(info.uri).toBe(`mysql://${DEMO_IDENTITY.role}@127.0.0.1:${info.port}`);
      const c = await mysql.createConnection({ host: info.host as string, port: info.port as number, user: info.user as string, password: info.password as string });
      const [[row]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user, database() as db');
      expect(row).toEqual({ user: `${DEMO_IDENTITY.role}@%`, db: null });
      await c.end();
      child.kill('SIGTERM');
      expect((await child).exitCode).toBe(0);
    });

    it('gives TLS to clients that require it, verified against azdb\'s local CA; plain clients still get in', async () => {
      const { child, info } = await startProxy(['shopdb', '--db-name', 'shop']);
      try {
        const caFile = join(work, 'state', 'tls', 'ca.pem');
        const ca = await readFile(caFile, 'utf8');
        const secure = await mysql.createConnection({ host: '127.0.0.1', port: info.port as number, user: info.user as string, password: info.password as string, database: 'shop', ssl: { ca } });
        const [[row]] = await secure.query<mysql.RowDataPacket[]>("select 'through azdb' as how");
        expect(row).toEqual({ how: 'through azdb' });
        expect((secure.connection.stream as unknown as { encrypted?: boolean }).encrypted).toBe(true);
        await secure.end();
        // The verification is real: the emulated Azure's CA does not vouch for the tunnel.
        const wrong = await mysql
          .createConnection({ host: '127.0.0.1', port: info.port as number, user: info.user as string, password: info.password as string, ssl: { ca: azure.caPem } })
          .then((c) => c.end().then(() => undefined), (error: Error) => error);
        expect(wrong?.message).toMatch(/self[- ]signed|unable to (verify|get)|certificate/i);
        const plain = await mysql.createConnection({ host: '127.0.0.1', port: info.port as number, user: info.user as string, password: info.password as string, database: 'shop' });
        await plain.query('select 1');
        await plain.end();

        if (!client.skip) {
          // The client's own `status` says whether its connection (to azdb) is encrypted.
          const mariadb = (ca: string) =>
            execa(client.path!, ['--no-defaults', '--protocol=TCP', '-h', '127.0.0.1', '-P', String(info.port), '-u', info.user as string, '--ssl', `--ssl-ca=${ca}`, '--ssl-verify-server-cert', '-e', 'status', 'shop'], {
              env: { PATH: process.env.PATH, MYSQL_PWD: info.password as string },
              reject: false,
            });
          const verified = await mariadb(caFile);
          expect(verified.stderr).toBe('');
          expect(verified.exitCode).toBe(0);
          expect(verified.stdout).toMatch(/SSL:\s+Cipher in use is \S+/);
          const unverified = await mariadb(azure.caFile);
          expect(unverified.exitCode).not.toBe(0);
          expect(unverified.stderr).toMatch(/TLS\/SSL error|SSL connection error/);
        }
      } finally {
        child.kill('SIGINT');
        await child;
      }
    });

    it('is closed by `azdb db logout NAME` from another process', async () => {
      const { child } = await startProxy(['shopdb']);
      const logout = await runAzdb(['db', 'logout', 'shopdb'], env);
      expect(logout.exitCode).toBe(0);
      expect(logout.stdout).toContain('Closed 1 tunnel');
      expect((await child).exitCode).toBe(0);
    });
  });

  describe.skipIf(client.skip)('azdb db connect', () => {
    /** A mariadb in front of the real one that records its pid, argv and whether MYSQL_PWD came by env. */
    async function clientSpy(): Promise<{ path: string; log: string }> {
      const dir = await mkdtemp(join(tmpdir(), 'azdb-mariadb-spy-'));
      const log = join(dir, 'argv.log');
      const path = join(dir, 'mariadb');
      await writeFile(path, `#!/bin/sh\necho "$$ ARGV:$*" >> '${log}'\n[ -n "$MYSQL_PWD" ] && echo "ENV:MYSQL_PWD-set" >> '${log}'\nexec '${client.path}' --no-defaults "$@"\n`);
      await chmod(path, 0o755);
      return { path: dir, log };
    }

    it('runs mariadb through an in-process tunnel with the password in its environment only', async () => {
      const spy = await clientSpy();
      const result = await execa('node', [BIN, 'db', 'connect', 'shopdb', '--db-name', 'shop'], {
        env: { ...env, PATH: `${spy.path}:${process.env.PATH}` },
        input: 'select 6 * 7 as answer, database();\n',
        reject: false,
      });
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe('answer\tdatabase()\n42\tshop');
      const log = await readFile(spy.log, 'utf8');
      expect(log).toContain('ENV:MYSQL_PWD-set');
      // With azdb's CA, so a client that verifies certificates by default (MariaDB 11.4+) can.
      expect(log).toMatch(new RegExp(`ARGV:--protocol=TCP -h 127\\.0\\.0\\.1 -P \\d+ -u ${DEMO_IDENTITY.role} --ssl-ca=${join(work, 'state', 'tls', 'ca.pem')} shop\\n`));
    });

    // Errors before the greeting must carry server-range codes: the client shows a 2xxx code
    // from a server as "ERROR 2027 (HY000): Received malformed packet" instead of the text.
    it("shows azdb's message and hint in mariadb when the server is down", async () => {
      const result = await execa('node', [BIN, 'db', 'connect', 'down-mysql', '--db-name', 'shop'], { env, input: 'select 1;\n', reject: false });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).not.toContain('malformed packet');
      // Refused (1429) as a rule; when another test's listener has taken the freed port meanwhile, the
      // server is silent instead (1159): either way azdb's own text in a server-range code.
      expect(result.stderr).toMatch(
        new RegExp(`ERROR (1429 \\(08S01\\): Can't connect to MySQL server on '127\\.0\\.0\\.1:${downPort}'|1159 \\(08S01\\): Lost connection to MySQL server down-mysql at '127\\.0\\.0\\.1:${downPort}')`),
      );
      expect(result.stderr).toContain('azdb doctor down-mysql');
    });

    it("shows azdb's message in mariadb when the server's certificate names another host", async () => {
      const result = await execa('node', [BIN, 'db', 'connect', 'misnamed-mysql', '--db-name', 'shop'], { env, input: 'select 1;\n', reject: false });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).not.toContain('malformed packet');
      expect(result.stderr).toContain('ERROR 1429 (08001): SSL connection error');
      expect(result.stderr).toContain('shopdb.postgres.database.azure.com');
    });

    it('passes the client exit code through', async () => {
      const result = await execa('node', [BIN, 'db', 'connect', 'shopdb', '--db-name', 'shop'], { env, input: 'select nonsense;\n', reject: false });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain("Unknown column 'nonsense'");
    });

    it('cancels a running query when the client gets Ctrl+C, and azdb survives it', async () => {
      const spy = await clientSpy();
      const marker = `db-connect-ctrl-c-${Date.now()}`;
      const child = execa('node', [BIN, 'db', 'connect', 'shopdb', '--db-name', 'shop'], {
        env: { ...env, PATH: `${spy.path}:${process.env.PATH}` },
        input: `select sleep(60), '${marker}';\nselect 'after';\n`,
        reject: false,
      });
      await waitFor(async () => (await processlist(marker)).length > 0, 'the query to run');
      const clientPid = Number((await readFile(spy.log, 'utf8')).split(' ')[0]);
      // Ctrl+C in a terminal reaches the whole foreground group: the client and azdb.
      process.kill(clientPid, 'SIGINT');
      child.kill('SIGINT');
      await waitFor(async () => (await processlist(marker)).length === 0, 'the query to be killed', 10_000);
      const result = await child;
      expect(result.stderr).toContain('Query execution was interrupted');
      // The batch client stops at the error with its code 1; azdb outlived the SIGINT to pass it on.
      expect(result.signal).toBeUndefined();
      expect(result.exitCode).toBe(1);
    });
  });
});
