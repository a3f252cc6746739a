/** Pure text formatting shared by the CLI's tables and the TUI's screens. */

/** A query (or any text) on one line: runs of whitespace become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** `850 ms`, `42 s`, `3 min 5 s`, `2 h 10 min`. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const PLAIN_WORD = /^[\w./@%+=:,-]+$/;

/** Text as one shell word, quoted only when it needs to be (a path in a command to copy). */
export function shellWord(text: string): string {
  return PLAIN_WORD.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
