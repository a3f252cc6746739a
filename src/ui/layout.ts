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
