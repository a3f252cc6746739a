/** The key bar at the bottom of every screen: `enter connect · t tunnel · ? help`. */
import { Text } from 'ink';
import { useTheme } from '../theme.js';

export interface KeyBarProps {
  hints: ReadonlyArray<{ keys: string; label: string }>;
}

export function KeyBar({ hints }: KeyBarProps) {
  const theme = useTheme();
  return (
    <Text wrap="truncate-end">
      {hints.map((hint, index) => (
        <Text key={`${hint.keys}-${hint.label}`}>
          {index > 0 ? <Text color={theme.muted}> · </Text> : null}
          <Text bold color={theme.accent}>
            {hint.keys}
          </Text>
          <Text> {hint.label}</Text>
        </Text>
      ))}
    </Text>
  );
}
