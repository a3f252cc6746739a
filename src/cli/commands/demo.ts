/**
 * `azdb demo`: emulated Azure (Entra ID, ARM, PostgreSQL servers behind TLS + token fronts) over
 * an embedded PostgreSQL, plus MySQL servers over Debian's MariaDB where it is installed, a config
 * and environment that point azdb at it, then the picker (on a terminal without --no-tui; plain
 * mode otherwise). Everything lives in the state folder; Ctrl+C (or q in the picker) stops all of it.
 */
import { readFile } from 'node:fs/promises';
import { constants as osConstants, homedir } from 'node:os';
import { join } from 'node:path';
import { resolveStateDir } from '../../config/paths.js';
import { claimDemoFolder, writeDemoFiles, type DemoAzure } from '../../core/demo.js';
import type { CliContext } from '../context.js';
import { untilSignal } from '../signals.js';
import { ExternalError, UserError } from '../../errors.js';
import { spawnProcess } from '../../process/exec.js';
import { ExitWithoutMessage } from '../exit.js';
import { isInteractive, runTuiSession } from './tui.js';

export async function demo(ctx: CliContext, options: { tui: boolean }): Promise<void> {
  if (options.tui && !ctx.out.json && isInteractive()) {
    await demoWithPicker(ctx);
    return;
  }
  const dir = join(resolveStateDir(ctx.env, homedir(), process.getuid?.()), 'demo');
  const started = Date.now();
  const release = await claimDemoFolder(dir);
  try {
    await runDemo(ctx, options, dir, started);
  } finally {
    await release();
  }
}

async function runDemo(ctx: CliContext, options: { tui: boolean }, dir: string, started: number): Promise<void> {
  // From the first moment: a signal while the servers start stops what has started so far.
  // SIGHUP too, so closing the terminal leaves no server behind.
  const stopped = untilSignal(DEMO_SIGNALS);
  const starting = new AbortController();
  void stopped.promise.then((signal) => {
    if (starting.signal.aborted) return;
    ctx.out.info(`\n${signal}: stopping the demo...`);
    starting.abort(signal);
  });
  if (!ctx.startDemoAzure) throw new UserError('this build of azdb has no demo (the emulated Azure is not included)');
  let azure: DemoAzure;
  try {
    azure = await ctx.startDemoAzure({ dir, onProgress: (m) => ctx.out.info(m), signal: starting.signal });
  } catch (error) {
    stopped.dispose();
    if (starting.signal.aborted) throw new ExitWithoutMessage(128 + signalNumber(starting.signal.reason as NodeJS.Signals));
    throw error;
  }
  if (!azure.hasMySql) ctx.out.info('No MySQL servers: MariaDB is not installed (Debian/Ubuntu: apt-get install mariadb-server).');
  try {
    const { configFile, envFile } = await writeDemoFiles(azure, dir);
    Object.assign(process.env, azure.identityEnv(), { AZDB_CONFIG: configFile });

    if (options.tui) ctx.out.info('The picker needs a terminal (stdin and stdout a TTY, no --json); running in plain mode (--no-tui).');
    report(ctx, azure, { configFile, envFile, dir, seconds: (Date.now() - started) / 1000 });
    await stopped.promise;
  } finally {
    await azure.stop();
    stopped.dispose();
  }
  ctx.out.info('Demo stopped; its data stays in ' + dir + ' for a fast next start.');
}

const DEMO_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function signalNumber(signal: NodeJS.Signals): number {
  return osConstants.signals[signal] ?? 0;
}

function report(ctx: CliContext, azure: DemoAzure, info: { configFile: string; envFile: string; dir: string; seconds: number }): void {
  if (ctx.out.json) {
    ctx.out.document({
      config: info.configFile,
      env_file: info.envFile,
      state_dir: info.dir,
      arm_endpoint: azure.armEndpoint,
      ca_file: azure.caFile,
      servers: azure.servers.map((s) => ({
        name: s.name,
        protocol: s.protocol,
        kind: s.kind,
        fqdn: s.fqdn,
        host: s.host,
        port: s.port,
        user: s.loginUser,
        databases: s.databases,
      })),
    });
    return;
  }
  ctx.out.line(`\nEmulated Azure is up (${info.seconds.toFixed(1)} s):`);
  const width = Math.max(10, ...azure.servers.map((s) => s.name.length));
  for (const s of azure.servers) {
    ctx.out.line(`  ${s.name.padEnd(width)} ${s.kind.padEnd(8)} ${s.fqdn} -> ${s.host}:${s.port}  user ${s.loginUser}  databases ${s.databases.join(', ')}`);
  }
  ctx.out.line(`  ${'ARM'.padEnd(width)} ${azure.armEndpoint}`);
  ctx.out.line(`\nConfig: ${info.configFile}`);
  ctx.out.line(`From another shell:  source ${info.envFile}  then  azdb db ls  /  azdb db connect orders`);
  ctx.out.line('Press Ctrl+C to stop.');
}

interface DemoDocument {
  config: string;
  env_file: string;
  state_dir: string;
}

/**
 * The demo with the picker. The emulated Azure runs as `azdb --json demo --no-tui` in a child of
 * its own session: the terminal's Ctrl+C goes to the foreground process group, and psql's Ctrl+C
 * (cancel the query) must not also reach the embedded PostgreSQL and MariaDB and shut them down.
 * The picker is then "another shell" on it, through its config and env file; quitting the picker
 * (q, Ctrl+C in the picker, SIGTERM, SIGHUP) stops the child, and with it everything it started.
 */
async function demoWithPicker(ctx: CliContext): Promise<void> {
  const script = process.argv[1];
  if (!script) throw new ExternalError('cannot tell how azdb was started (no script path in argv)');
  const child = spawnProcess(process.execPath, [script, '--json', 'demo', '--no-tui'], { detached: true, stdio: 'pipe', env: { NO_COLOR: '1' } });
  const stopChild = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  // Last resort if this process ends without the cleanup below (an uncaught error).
  process.on('exit', stopChild);
  let forward = true;
  // Once the picker has quit, the SIGTERM that stops the child is azdb's own, not the user's.
  let pickerQuit = false;
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    if (pickerQuit && text.trim() === 'SIGTERM: stopping the demo...') return;
    if (forward) process.stderr.write(chunk);
  });
  const startup = untilSignal();
  try {
    const document = await Promise.race([
      readDocument(child),
      startup.promise.then((signal) => {
        throw new StartupInterrupted(signal);
      }),
    ]);
    startup.dispose();
    forward = false;
    const env = await readEnvFile(document.env_file);
    // @azure/identity reads the managed-identity endpoint from process.env.
    Object.assign(process.env, env);
    ctx.out.info(`Opening the picker on the demo (config ${document.config}): Q (or Ctrl+C) quits and stops the demo.`);
    await runTuiSession({ ...ctx, env: { ...ctx.env, ...env }, configFlag: document.config });
    ctx.out.info('Stopping the demo...');
    pickerQuit = true;
    forward = true; // the demo itself says when it has stopped
  } catch (error) {
    forward = true;
    if (error instanceof StartupInterrupted) ctx.out.info(`\n${error.signal}: stopping the demo...`);
    else if (error instanceof DemoExited) throw new ExitWithoutMessage(error.exitCode || 1); // it said why on stderr
    else throw error;
  } finally {
    startup.dispose();
    stopChild();
    const result = await child;
    process.off('exit', stopChild);
    if (result.exitCode !== 0 && result.exitCode !== undefined && !stderr.includes('Demo stopped')) {
      ctx.out.info(`The demo exited with code ${result.exitCode}.`);
    }
  }
}

class StartupInterrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

class DemoExited extends Error {
  constructor(readonly exitCode: number) {
    super(`the demo exited with code ${exitCode}`);
  }
}

/** The one JSON document the plain demo prints on stdout once it is up. */
function readDocument(child: ReturnType<typeof spawnProcess>): Promise<DemoDocument> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      try {
        resolve(JSON.parse(stdout) as DemoDocument);
      } catch {
        // not whole yet
      }
    });
    child.then((result) => reject(new DemoExited(result.exitCode ?? 1)), reject);
  });
}

/** The variables of the env file the demo writes (`export K='V'` lines, see envScript). */
async function readEnvFile(path: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const match = /^export (\w+)='(.*)'$/.exec(line);
    if (match) env[match[1]!] = match[2]!.replace(/'\\''/g, "'");
  }
  return env;
}
