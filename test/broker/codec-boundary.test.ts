/**
 * The codec folders stay pure: bytes in, typed messages out. Their modules import each other and
 * node:buffer, nothing else: no sockets, no sessions, no other broker module. Pooling and the
 * sessions build on the codec, never the other way round.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CODECS = ['postgres', 'mysql'].map((protocol) => fileURLToPath(new URL(`../../src/broker/${protocol}/codec/`, import.meta.url)));
/** Static imports and re-exports (over several lines too), side-effect imports, dynamic imports. */
const SPECIFIER = /^\s*(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]/gm;

it('the check sees every form of import', () => {
  const source = [
    "import { Socket } from 'node:net';",
    'import {\n  a,\n  b,\n} from "../session.js";',
    "export { c } from '../relay.js';",
    "import '../side-effect.js';",
    "const m = await import('../lazy.js');",
    "const b = Buffer.from('V', 'ascii');",
  ].join('\n');
  expect([...source.matchAll(SPECIFIER)].map((match) => match[1] ?? match[2] ?? match[3])).toEqual(['node:net', '../session.js', '../relay.js', '../side-effect.js', '../lazy.js']);
});

describe.each(CODECS)('%s', (dir) => {
  const files = readdirSync(dir).filter((name) => name.endsWith('.ts'));

  it('holds the protocol modules', () => {
    expect(files.length).toBeGreaterThan(3);
  });

  it.each(files)('%s imports only its own folder and node:buffer', (name) => {
    const source = readFileSync(join(dir, name), 'utf8');
    const outside = [...source.matchAll(SPECIFIER)]
      .map((match) => (match[1] ?? match[2] ?? match[3])!)
      .filter((specifier) => specifier !== 'node:buffer' && !(/^\.\/[\w-]+\.js$/.test(specifier) && existsSync(join(dir, specifier.replace(/\.js$/, '.ts')))));
    expect(outside).toEqual([]);
    expect(source).not.toMatch(/\brequire\(/);
  });
});
