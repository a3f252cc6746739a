/**
 * The problems found in one azdb.yaml, each with the file, line and column of the node at fault
 * and the path of the key it concerns (`databases[2].uri: …`).
 */
import type { BaseIssue } from 'valibot';
import type { LineCounter } from 'yaml';
import type { ConfigIssue, SourcePosition } from './schema.js';
import type { Path } from './data.js';
import { formatPath, nodeAt } from './yaml-path.js';

// Past this many errors the rest is noise (and memory); the count still says how bad it is.
const MAX_ISSUES = 1000;

/** `key`: the path ends with a mapping key the problem is about (unknown, or missing). */
export interface Where {
  key?: boolean;
}

export class Issues {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];
  dropped = 0;

  /** `root` is the document's top node, which paths start from. */
  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
    private readonly root: unknown,
  ) {}

  /** Where the node at `path` is written (see {@link nodeAt}). */
  position(path: Path, where: Where = {}): SourcePosition {
    return this.positionOf(nodeAt(this.root, path, where));
  }

  /** A node's position, or an offset's. */
  positionOf(at: unknown): SourcePosition {
    const offset = typeof at === 'number' ? at : ((at as { range?: readonly number[] | null } | null)?.range?.[0] ?? 0);
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  error(path: Path, message: string, where: Where = {}): void {
    this.errorAt(this.position(path, where), where.key ? path.slice(0, -1) : path, message);
  }

  /** For problems found in the YAML itself, before there is data to have a path in. */
  errorAt(position: SourcePosition, path: Path, message: string): void {
    if (this.errors.length >= MAX_ISSUES) {
      this.dropped++;
      return;
    }
    this.errors.push(issue(position, path, message));
  }

  warn(path: Path, message: string): void {
    this.warnings.push(issue(this.position(path), path, message));
  }

  /** Valibot's issues: each names the keys (and list indices) down to the value at fault. */
  addSchemaIssues(list: readonly BaseIssue<unknown>[]): void {
    for (const { path = [], message } of list) {
      const keys = path.map((item) => item.key as string | number);
      this.error(keys, message, { key: path.at(-1)?.origin === 'key' });
    }
  }
}

function issue(position: SourcePosition, path: Path, message: string): ConfigIssue {
  const shown = formatPath(path);
  return { ...position, path: shown, message: shown === '' ? message : `${shown}: ${message}` };
}
