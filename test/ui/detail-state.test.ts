import { describe, expect, it } from 'vitest';
import { detailKeyBar, detailKeyToIntent, detailLines, detailViewport, openDetail, scrollDetail } from '../../src/ui/detail/state.js';
import { wrapText } from '../../src/ui/layout.js';

describe('wrapping text for a details view', () => {
  it('breaks long lines at spaces, keeps the text\'s own line breaks and indentation, cuts words longer than a line', () => {
    expect(wrapText('select a, b from t where x = 1', 16)).toEqual(['select a, b from', 't where x = 1']);
    expect(wrapText('select *\n  from t\n\nwhere 1', 20)).toEqual(['select *', '  from t', '', 'where 1']);
    expect(wrapText('x'.repeat(25), 10)).toEqual(['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(5)]);
    expect(wrapText('ab ' + 'y'.repeat(12), 10)).toEqual(['ab', 'y'.repeat(10), 'yy']);
    expect(wrapText('a\tb\r\nc\u0007', 20)).toEqual(['a  b', 'c']);
    expect(wrapText('', 20)).toEqual(['']);
    for (const line of wrapText('lorem ipsum dolor '.repeat(40), 33)) expect(line.length).toBeLessThanOrEqual(33);
  });
});

describe('details view', () => {
  const detail = openDetail('Session 1', Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n'));
  const view = detailViewport(80, 12);

  it('has the rows given but the title and the position line', () => {
    expect(view).toEqual({ width: 80, height: 10 });
    expect(detailLines(detail, 80)).toHaveLength(30);
  });

  it('scrolls within the text: never before its start or past its last screenful', () => {
    expect(scrollDetail(detail, -1, view)).toBe(detail);
    expect(scrollDetail(detail, 3, view).scroll).toBe(3);
    expect(scrollDetail(detail, Infinity, view).scroll).toBe(20);
    expect(scrollDetail(scrollDetail(detail, Infinity, view), -Infinity, view).scroll).toBe(0);
    // Text that fits does not scroll.
    const short = openDetail('x', 'one line');
    expect(scrollDetail(short, 5, view)).toBe(short);
  });

  it('maps keys: moving scrolls, esc and q close, ? help, Q and ctrl+c quit', () => {
    expect(detailKeyToIntent('j', {}, 10)).toEqual({ type: 'scroll', delta: 1 });
    expect(detailKeyToIntent('', { upArrow: true }, 10)).toEqual({ type: 'scroll', delta: -1 });
    expect(detailKeyToIntent('', { pageDown: true }, 10)).toEqual({ type: 'scroll', delta: 9 });
    expect(detailKeyToIntent('G', {}, 10)).toEqual({ type: 'scroll', delta: Infinity });
    expect(detailKeyToIntent('q', {}, 10)).toEqual({ type: 'close' });
    expect(detailKeyToIntent('', { escape: true }, 10)).toEqual({ type: 'close' });
    expect(detailKeyToIntent('?', {}, 10)).toEqual({ type: 'help' });
    expect(detailKeyToIntent('Q', {}, 10)).toEqual({ type: 'quit' });
    expect(detailKeyToIntent('c', { ctrl: true }, 10)).toEqual({ type: 'quit' });
    expect(detailKeyToIntent('', { return: true }, 10)).toBeUndefined();
    expect(detailKeyBar().map((h) => `${h.keys} ${h.label}`).join(' · ')).toBe('↑↓ scroll · PgUp/PgDn page · esc/q close · ? help · Q quit');
  });
});
