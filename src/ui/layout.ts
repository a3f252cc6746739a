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
