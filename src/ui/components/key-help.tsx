/** A screen's `?`: its keys, one a line, under a title. */
import { Box, Text } from 'ink';
import type { KeyHint } from '../keys.js';
import { useTheme } from '../theme.js';

export function KeyHelp({ title, rows }: { title: string; rows: readonly KeyHint[] }) {
  const theme = useTheme();
  return (
    <Box flexDirection="column">
      <Text bold>{title}</Text>
      {rows.map((row) => (
        <Text key={row.label} wrap="truncate-end">
          <Text color={theme.accent}>{row.keys.padEnd(22)}</Text>
          {row.label}
        </Text>
      ))}
    </Box>
  );
}
