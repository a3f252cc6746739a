/**
 * The layer rules of .dependency-cruiser.cjs, enforced: the source tree breaks none of them, and
 * each rule catches the violation planted for it in test/fixtures/layers (so a rule that stops
 * matching, e.g. after a folder moves, fails here instead of passing silently).
 */
import { resolve } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const CONFIG = resolve(ROOT, '.dependency-cruiser.cjs');
const CRUISE = resolve(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

async function cruise(cwd: string): Promise<{ violations: Violation[]; modules: number }> {
  const result = await execa(process.execPath, [CRUISE, 'src', '--config', CONFIG, '--output-type', 'json'], { cwd });
  const report = JSON.parse(result.stdout) as { summary: { violations: Violation[]; totalCruised: number } };
  return { violations: report.summary.violations, modules: report.summary.totalCruised };
}

describe('the layer rules', () => {
  it('hold for src: no import circle, no forbidden import', async () => {
    const { violations, modules } = await cruise(ROOT);
    expect(violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
    expect(modules).toBeGreaterThan(100);
  });

  it('each catch the import that breaks them', async () => {
    const { violations } = await cruise(resolve(ROOT, 'test/fixtures/layers'));
    const found = violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to.replace(/^.*node_modules\//, 'node_modules/')}`);
    expect(found).toEqual(
      expect.arrayContaining([
        'ui-only-through-core-api: src/ui/screen.ts → src/cli/main.ts',
        'ui-no-sockets: src/ui/screen.ts → net',
        'no-circular: src/core/a.ts → src/core/b.ts',
        'lower-layers-not-upward: src/diagnostics/check.ts → src/core/a.ts',
        'emulator-only-from-entry: src/cli/main.ts → src/emulator/front.ts',
        'codecs-self-contained: src/broker/postgres/codec/frames.ts → src/broker/postgres/session.ts',
        'codecs-no-io: src/broker/postgres/codec/frames.ts → net',
      ]),
    );
    expect(found.some((v) => v.startsWith('azure-sdk-only-in-azure: src/core/a.ts → node_modules/@azure/identity/'))).toBe(true);
  });
});
