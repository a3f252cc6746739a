/**
 * argv → command. Every command is declared here with its flags; the work lives in ./commands,
 * each imported only when it runs, so `--help` and `--version` load nothing heavy (no
 * @azure/identity, pg, mysql2, Ink). Exit codes: 0 ok, 1 failure, 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { nearest } from '../config/nearest.js';
import { BugError, REPORT_URL, toAzdbError, UserError } from '../errors.js';
import { completionScript, completions, SHELLS, type Shell } from './completion.js';
import { cliContext, hintFor, type CliContext, type CliPlugins } from './context.js';
import { ExitWithoutMessage } from './exit.js';
import { createOutput, type Output, type OutputStreams } from './output.js';

// Types only: erased from the output, so the commands still load on demand.
import type { ConfigCreateFlags } from './commands/config-create.js';
import type { ProxyFlags } from './commands/db-tunnel.js';
import type { LoginFlags } from '../core/tunnels.js';

interface GlobalOptions {
  config?: string;
  json?: boolean;
}

export async function main(argv: string[], streams: Partial<OutputStreams> = {}, plugins: CliPlugins = {}): Promise<number> {
  const io: OutputStreams = {
    stdout: streams.stdout ?? process.stdout,
    stderr: streams.stderr ?? process.stderr,
    env: streams.env ?? process.env,
    isTTY: streams.isTTY ?? Boolean(process.stdout.isTTY),
  };
  let out = createOutput(argv.includes('--json'), io);
  let configFlag: string | undefined;
  const program = buildProgram(io, plugins, (ctx) => {
    out = ctx.out;
    configFlag = ctx.configFlag;
  });
  try {
    rejectUnknownCommand(argv, program);
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    return report(error, out, configFlag);
  }
}

function buildProgram(io: OutputStreams, plugins: CliPlugins, onContext: (ctx: CliContext) => void): Command {
  const program = new Command('azdb')
    .description('Password-free, audited access to Azure Database for PostgreSQL and MySQL with Microsoft Entra ID tokens.')
    .addOption(new Option('--config <path>', 'config file (else $AZDB_CONFIG, else $XDG_CONFIG_HOME/azdb/azdb.yaml)'))
    .option('--json', 'machine output: one JSON document on stdout, human text on stderr')
    .version(packageVersion(), '-V, --version', 'print the version of azdb')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride();

  const context = (command: Command): CliContext => {
    const globals = command.optsWithGlobals<GlobalOptions>();
    const ctx = cliContext(createOutput(Boolean(globals.json), io), io.env, globals.config, plugins);
    onContext(ctx);
    return ctx;
  };
  program
    .command('tui', { isDefault: true })
    .description('connection picker (needs a TTY; otherwise prints the `db ls` listing)')
    .action(async (_options: unknown, command: Command) => (await import('./commands/tui.js')).tui(context(command)));

  program
    .command('setup')
    .description('onboarding wizard: the five steps from credentials to a first connection (without a TTY or with --json: the checks, exit 0 when all pass)')
    .action(async (_options: unknown, command: Command) => (await import('./commands/setup.js')).setup(context(command)));

  program
    .command('demo')
    .description('emulated Azure + embedded PostgreSQL, then the picker')
    .option('--no-tui', 'stay in plain mode: print how to connect and run until Ctrl+C')
    .action(async (options: { tui: boolean }, command: Command) => (await import('./commands/demo.js')).demo(context(command), options));

  const db = program.command('db').description('databases: list, connect, log out');
  db.command('ls')
    .description('databases visible under the roles: static and discovered through ARM')
    .action(async (_options: unknown, command: Command) => (await import('./commands/db-ls.js')).dbLs(context(command)));
  db.command('connect')
    .description('psql / mysql through the broker')
    .argument('<name>', 'database name as in `azdb db ls`')
    .option('--db-user <user>', 'database user (default: the only one the roles allow)')
    .option('--db-name <name>', 'database name (default: the only one the roles allow)')
    .action(async (name: string, options: LoginFlags, command: Command) => {
      const code = await (await import('./commands/db-tunnel.js')).dbConnect(context(command), name, options);
      if (code !== 0) throw new ExitWithoutMessage(code);
    });
  db.command('logout')
    .description('close tunnels and drop cached tokens for NAME (or all)')
    .argument('[name]', 'database name')
    .action(async (name: string | undefined, _options: unknown, command: Command) => (await import('./commands/db-tunnel.js')).dbLogout(context(command), name));

  const proxy = program.command('proxy').description('local tunnels for GUI clients and drivers');
  proxy
    .command('db')
    .description('tunnel until SIGINT/SIGTERM')
    .argument('<name>', 'database name as in `azdb db ls`')
    .option('--db-user <user>', 'database user')
    .option('--db-name <name>', 'database name')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (default: any free port)', parsePort)
    .option('--password-file <file>', 'keep the tunnel password in FILE (0600): read when it exists, else a new random one written there')
    .action(async (name: string, options: ProxyFlags, command: Command) =>
      (await import('./commands/db-tunnel.js')).proxyDb(context(command), name, options));

  program
    .command('queries')
    .description('list active sessions; cancel or terminate one')
    .argument('<name>', 'database name')
    .option('--db-user <user>', 'database user')
    .option('--db-name <name>', 'database name')
    .addOption(new Option('--cancel <pid>', 'cancel the running query of PID').conflicts('terminate'))
    .addOption(new Option('--terminate <pid>', 'terminate the session PID').conflicts('cancel'))
    .action(async (name: string, options: LoginFlags & { cancel?: string; terminate?: string }, command: Command) =>
      (await import('./commands/queries.js')).queries(context(command), name, options));

  program
    .command('doctor')
    .description('check config, credentials, DNS, TCP, TLS and login for a database')
    .argument('[name]', 'database name')
    .option('--db-user <user>', 'database user to log in as (default: the one `db connect` would use)')
    .option('--db-name <name>', 'database name to log in to')
    .action(async (name: string | undefined, options: LoginFlags, command: Command) => (await import('./commands/doctor.js')).doctorCommand(context(command), name, options));

  program
    .command('creds')
    .description('probe each credential source; never prints a token')
    .action(async (_options: unknown, command: Command) => (await import('./commands/creds.js')).creds(context(command)));

  const config = program.command('config').description('azdb.yaml: create and check');
  config
    .command('create')
    .description('write a starter config with discovery and a role')
    .option('-o, --output <file>', 'where to write (default: the config path)')
    .option('--azure-postgres-discovery <region>', 'discover Azure PostgreSQL servers in REGION')
    .option('--azure-mysql-discovery <region>', 'discover Azure MySQL servers in REGION')
    .option('--subscription <id>', 'subscription to discover in')
    .option('--resource-group <rg>', 'resource group to discover in')
    .option('--tag <k=v>', 'tag the servers must carry (repeatable)', collect, [])
    .option('--force', 'overwrite an existing file')
    .action(async (options: ConfigCreateFlags, command: Command) => (await import('./commands/config-create.js')).configCreate(context(command), options));
  config
    .command('check')
    .description('validate the config file; prints OK or every error with its line')
    .action(async (_options: unknown, command: Command) => (await import('./commands/config-check.js')).configCheck(context(command)));

  program
    .command('serve')
    .description('headless broker: config listeners, discovery refresh, /healthz /readyz /metrics')
    .option('--max-connections <n>', 'concurrent sessions of the process (of each worker with --workers); more get "too many connections"')
    .option('--drain-seconds <s>', 'on SIGTERM/SIGINT (and for listeners a reload removes), how long open sessions may finish', '30')
    .option('--workers <n>', 'processes accepting on the listeners (node:cluster); --max-connections and the token cache are per worker', '1')
    .action(async (options: { maxConnections?: string; drainSeconds: string; workers: string }, command: Command) =>
      (await import('./commands/serve.js')).serveCommand(context(command), options));

  program
    .command('pools')
    .description('connection pools of the running `azdb serve` (read from broker.http.address /pools)')
    .action(async (_options: unknown, command: Command) => (await import('./commands/pools.js')).pools(context(command)));

  program
    .command('completion')
    .description('print a completion script: `source <(azdb completion bash)` (zsh likewise; fish: `azdb completion fish | source`)')
    .argument('<shell>', `one of ${SHELLS.join(', ')}`)
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) throw new UserError(`no completion for "${shell}"`, { usage: true, hint: `Choose one of ${SHELLS.join(', ')}.` });
      io.stdout.write(completionScript(shell as Shell));
    });

  program
    .command('__complete', { hidden: true })
    .argument('[words...]')
    .action(async (words: string[], _options: unknown, command: Command) => {
      // The config the command being typed would use: its own --config, else the usual one.
      const at = words.indexOf('--config');
      const ctx = { ...context(command), ...(at >= 0 && words[at + 1] !== undefined ? { configFlag: words[at + 1] } : {}) };
      const names = async () => (await import('../config/load.js')).loadConfig((await import('../core/runtime.js')).configPath(ctx)).then((c) => c.databases.map((d) => d.name));
      for (const candidate of await completions(program, words, names)) io.stdout.write(`${candidate}\n`);
    });

  return program;
}

/**
 * `azdb doctr` would reach the default command (the picker) as an argument and fail with "too
 * many arguments for 'tui'": name the unknown command and the nearest real one instead.
 */
function rejectUnknownCommand(argv: readonly string[], program: Command): void {
  let word: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return;
    if (arg === '--config') i++;
    else if (!arg.startsWith('-')) {
      word = arg;
      break;
    }
  }
  if (word === undefined) return;
  const names = [...program.commands.flatMap((c) => [c.name(), ...c.aliases()]), 'help'];
  if (names.includes(word)) return;
  const suggestion = nearest(word, names);
  throw new UserError(`unknown command "${word}"`, {
    usage: true,
    hint: `${suggestion ? `Did you mean \`azdb ${suggestion}\`? ` : ''}\`azdb --help\` lists the commands.`,
  });
}

/** The version of package.json, two folders up from both src/cli and dist/cli. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`--port must be an integer from 0 to 65535, got "${value}"`, { usage: true });
  }
  return port;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function report(error: unknown, out: Output, configFlag: string | undefined): number {
  if (error instanceof CommanderError) {
    // Help and version are not failures; commander already printed the usage error.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
    failureDocument(out, error.message.replace(/^error: /, ''), '(run with --help for usage)');
    return 2;
  }
  if (error instanceof ExitWithoutMessage) return error.exitCode;
  const failure = toAzdbError(error);
  if (failure instanceof BugError) {
    const hint = `Please report it at ${REPORT_URL} with the command you ran${process.env.AZDB_DEBUG ? '' : ' (set AZDB_DEBUG=1 for details)'}.`;
    out.info(`azdb hit a bug: ${failure.message}`);
    out.info(hint);
    if (process.env.AZDB_DEBUG && error instanceof Error && error.stack) out.info(error.stack);
    failureDocument(out, `azdb hit a bug: ${failure.message}`, hint);
    return 1;
  }
  const hint = failure.hint ? hintFor(failure.hint, configFlag) : '';
  out.info(`error: ${failure.message}`);
  if (hint) out.info(`hint: ${hint}`);
  failureDocument(out, failure.message, hint);
  return failure instanceof UserError ? failure.exitCode : 1;
}

/** Under --json a failure is a document too: `{"ok": false, "error": {"message", "hint"}}` on stdout. */
function failureDocument(out: Output, message: string, hint: string): void {
  if (out.json) out.document({ ok: false, error: { message, hint } });
}
