/** A details view: renders a {@link Detail} in `rows` lines of `columns` (title, text, position). */
import { Box, Text } from 'ink';
import { useTheme } from '../theme.js';
import { detailLines, detailViewport, type Detail } from './state.js';

export function DetailView({ detail, columns, rows }: { detail: Detail; columns: number; rows: number }) {
  const theme = useTheme();
  const viewport = detailViewport(columns, rows);
  const lines = detailLines(detail, viewport.width);
  const start = Math.max(0, Math.min(detail.scroll, lines.length - viewport.height));
  const shown = lines.slice(start, start + viewport.height);
  const cut = lines.length > viewport.height;
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        {detail.title}
      </Text>
      {shown.map((line, i) => (
        <Text key={start + i} wrap="truncate-end">
          {line === '' ? ' ' : line}
        </Text>
      ))}
      {cut ? (
        <Text wrap="truncate-end" color={theme.muted}>
          lines {start + 1}–{start + shown.length} of {lines.length}
          {start + shown.length < lines.length ? ' · ↓ PgDn more' : ''}
        </Text>
      ) : null}
    </Box>
  );
}
