/**
 * Reading azdb.yaml: text → {@link AzdbConfig}, or one {@link ConfigError} naming every problem
 * as `file:line:col: message`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import * as v from 'valibot';
import { isScalar, LineCounter, parseDocument } from 'yaml';
import { UserError } from '../errors.js';
import { checkBetweenEntries, warnInsecureTls } from './cross-checks.js';
import type { Path } from './data.js';
import { Issues } from './issues.js';
import { describe } from './messages.js';
import { ConfigSchema, MAX_CONFIG_BYTES, type AzdbConfig, type ConfigIssue, type SourcePosition } from './schema.js';
import { toData } from './yaml-data.js';

// Listing thousands of lines helps nobody; `errors` keeps them all.
const MAX_LISTED = 50;

export class ConfigError extends UserError {
  readonly errors: readonly ConfigIssue[];

  constructor(errors: readonly ConfigIssue[], options: { omitted?: number } = {}) {
    const omitted = options.omitted ?? 0;
    const total = errors.length + omitted;
    const lines = errors.slice(0, MAX_LISTED).map(formatIssue);
    const more = total - lines.length;
    if (more > 0) lines.push(`… and ${more} more`);
    super(`${total === 1 ? '1 error' : `${total} errors`} in config:\n${lines.join('\n')}`, {
      hint: 'Fix the lines above, then run `azdb config check`.',
    });
    this.errors = errors;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.column}: ${issue.message}`;
}

/** Parses and validates azdb.yaml text; `file` is only used in messages and positions. */
export function parseConfig(text: string, file: string): AzdbConfig {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES) throw tooLarge(file, bytes);

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const issues = new Issues(file, lineCounter, doc.contents);
  if (doc.errors.length > 0) {
    // After a syntax error the tree is a guess: what follows it (more syntax errors, the shape)
    // mostly echoes the first mistake, so that one is the error, with the count of the rest.
    const [first, ...rest] = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0]);
    const more = rest.length > 0 ? ` (${rest.length} more syntax error${rest.length === 1 ? '' : 's'} after it may come from this one: fix it first)` : '';
    issues.errorAt(issues.positionOf(first!.pos[0]), [], `YAML syntax error: ${firstLine(first!.message)}${more}`);
    throw new ConfigError(issues.errors, { omitted: issues.dropped });
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw new ConfigError([
      {
        ...issues.positionOf(0),
        path: '',
        message: `the file is empty; expected a mapping that starts with "version: v1" (create one with \`azdb config create\`)`,
      },
    ]);
  }
  const config = validate(doc.contents, issues);
  if (config === undefined) {
    const errors = [...issues.errors].sort(byPosition);
    throw new ConfigError(errors, { omitted: issues.dropped });
  }
  config.warnings.sort(byPosition);
  return config;
}

/** The document checked against the schema, then between entries; undefined when there were errors. */
function validate(root: unknown, issues: Issues): AzdbConfig | undefined {
  const data = toData(root, (node, key, path) => {
    issues.errorAt(issues.positionOf(node), path, `expected a key name, got ${describe(key)}`);
  });
  const result = v.safeParse(ConfigSchema, data);
  if (!result.success) issues.addSchemaIssues(result.issues);
  checkBetweenEntries(data, issues);
  if (!result.success || issues.errors.length > 0) return undefined;
  const parsed = result.output;
  const source = (path: Path): SourcePosition => issues.position(path);
  const config: AzdbConfig = {
    ...parsed,
    discovery: parsed.discovery.map((matcher, index) => ({ ...matcher, source: source(['discovery', index]) })),
    databases: parsed.databases.map((db, index) => ({ ...db, source: source(['databases', index]) })),
    roles: parsed.roles.map((role, index) => ({ ...role, source: source(['roles', index]) })),
    broker: {
      ...parsed.broker,
      listeners: parsed.broker.listeners.map((listener, index) => ({ ...listener, source: source(['broker', 'listeners', index]) })),
    },
    file: issues.file,
    warnings: issues.warnings,
  };
  warnInsecureTls(config, issues);
  return config;
}

function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  return a.line - b.line || a.column - b.column;
}

/** Reads at most {@link MAX_CONFIG_BYTES} + 1 bytes, so a huge file or a device never fills memory. */
export async function loadConfig(file: string): Promise<AzdbConfig> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw openError(file, error);
  }
  try {
    if ((await handle.stat()).isDirectory()) {
      throw new UserError(`config file ${file} is a directory`, {
        hint: 'Point --config or AZDB_CONFIG at a file such as azdb.yaml.',
      });
    }
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_CONFIG_BYTES) throw tooLarge(file, length, true);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      throw new ConfigError([{ file, line: 1, column: 1, path: '', message: 'the file is not valid UTF-8 text' }]);
    }
    return parseConfig(text, file);
  } finally {
    await handle.close();
  }
}

function openError(file: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return new UserError(`config file ${file} does not exist`, {
      hint: 'Create one with `azdb config create` or `azdb setup`, or point --config / AZDB_CONFIG at an existing file.',
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new UserError(`config file ${file} cannot be read: permission denied`, {
      hint: 'Check the file owner and mode (it should be readable by the user running azdb).',
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new UserError(`config file ${file} cannot be read: ${message}`, { cause: error });
}

function tooLarge(file: string, bytes: number, atLeast = false): ConfigError {
  const size = atLeast ? `more than ${MAX_CONFIG_BYTES} bytes` : `${bytes} bytes`;
  return new ConfigError([
    {
      file,
      line: 1,
      column: 1,
      path: '',
      message: `the file is too large (${size}); azdb.yaml may be at most 1 MiB`,
    },
  ]);
}

function firstLine(message: string): string {
  return (message.split('\n', 1)[0] ?? message).trim();
}
