/** Layout arithmetic the views share (pure). */

/**
 * Terminal lines `text` takes when wrapped at `columns` (at least 1 a line). Ink wraps at word
 * boundaries, so a wrapped line is counted as up to 10 columns shorter: rather a spare line than a
 * cut one.
 */
export function textLines(text: string, columns: number): number {
  const width = Math.max(20, columns);
  return text.split('\n').reduce((sum, line) => {
    const length = [...line].length;
    return sum + (length <= width ? 1 : Math.ceil(length / (width - 10)));
  }, 0);
}

/** The first index of the list window that keeps `cursor` in view. */
export function windowStart(cursor: number, total: number, height: number): number {
  if (total <= height) return 0;
  const start = cursor - Math.floor(height / 2);
  return Math.max(0, Math.min(start, total - height));
}

/** A cursor kept inside a list of `length` items (0 when the list is empty). */
export function clampCursor(value: number, length: number): number {
  return Math.max(0, Math.min(value, Math.max(0, length - 1)));
}

/**
 * `text` as the lines a terminal of `columns` shows: its own line breaks kept, long lines broken
 * at spaces (a word longer than a line is cut), tabs as two spaces, other control characters
 * dropped. What a details view scrolls through.
 */
export function wrapText(text: string, columns: number): string[] {
  const width = Math.max(10, columns);
  const lines: string[] = [];
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\r\n?/g, '\n').replace(/\t/g, '  ').replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, '');
  for (const paragraph of clean.split('\n')) {
    let line = '';
    for (const token of paragraph.split(/(\s+)/)) {
      if (token === '') continue;
      const fits = [...line].length + [...token].length <= width;
      if (fits) {
        line += token;
        continue;
      }
      if (/^\s+$/.test(token)) {
        // A break falls here: the spaces go with it.
        lines.push(line);
        line = '';
        continue;
      }
      if (line.trim() !== '') lines.push(line.trimEnd());
      line = '';
      let word = [...token];
      while (word.length > width) {
        lines.push(word.slice(0, width).join(''));
        word = word.slice(width);
      }
      line = word.join('');
    }
    lines.push(line.trimEnd());
  }
  return lines;
}
