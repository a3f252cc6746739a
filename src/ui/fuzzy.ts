/**
 * Fuzzy matching for the picker's `/` filter: the query's characters must appear in order
 * (case-insensitive) in the text; runs of consecutive characters and matches at the start of a
 * word score higher, so `ord` ranks `orders` above `legacy-order-db`. Pure.
 */

/** The score of `query` in `text` (higher is better), or undefined when it does not match. */
export function fuzzyScore(query: string, text: string): number | undefined {
  const q = query.toLowerCase().replace(/\s+/g, '');
  if (q.length === 0) return 0;
  const t = text.toLowerCase();
  // Best of a greedy match from every possible start of the first character.
  let best: number | undefined;
  for (let start = t.indexOf(q[0]!); start !== -1; start = t.indexOf(q[0]!, start + 1)) {
    const score = scoreFrom(q, t, start);
    if (score !== undefined && (best === undefined || score > best)) best = score;
  }
  return best;
}

function scoreFrom(q: string, t: string, start: number): number | undefined {
  let score = 0;
  let previous = -2;
  let position = start;
  for (const char of q) {
    const found = t.indexOf(char, position);
    if (found === -1) return undefined;
    score += 1;
    if (found === previous + 1) score += 5; // consecutive
    if (found === 0 || /[\s\-_.=/:,]/.test(t[found - 1]!)) score += 3; // word start
    previous = found;
    position = found + 1;
  }
  // Shorter spans are tighter matches.
  return score - (previous - start + 1 - q.length) * 0.1;
}

export interface FilterableItem {
  name: string;
  labels: Record<string, string>;
}

/**
 * The items matching `query` over their name, `key=value` labels and `otherTexts` (other columns
 * a row shows), best first (a name match weighs more than the rest); ties keep the input order.
 * An empty query keeps every item.
 */
export function fuzzyFilter<T extends FilterableItem>(items: readonly T[], query: string, otherTexts: (item: T) => readonly string[] = () => []): T[] {
  if (query.trim().length === 0) return [...items];
  const scored: Array<{ item: T; score: number; index: number }> = [];
  items.forEach((item, index) => {
    const byName = fuzzyScore(query, item.name);
    const byLabel = [...Object.entries(item.labels).map(([k, v]) => `${k}=${v}`), ...otherTexts(item)]
      .map((text) => fuzzyScore(query, text))
      .reduce<number | undefined>((a, b) => (b === undefined ? a : a === undefined ? b : Math.max(a, b)), undefined);
    const score = byName !== undefined ? byName * 2 : byLabel;
    if (score !== undefined) scored.push({ item, score, index });
  });
  return scored.sort((a, b) => b.score - a.score || a.index - b.index).map((s) => s.item);
}
