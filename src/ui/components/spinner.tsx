/** A one-line spinner with a label, for work in flight. */
import { useEffect, useState } from 'react';
import { Text } from 'ink';
import { useTheme } from '../theme.js';

export const SPINNER_FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface SpinnerProps {
  label: string;
  /** @default 100 */
  intervalMs?: number;
}

export function Spinner({ label, intervalMs = 100 }: SpinnerProps) {
  const theme = useTheme();
  const [frame, setFrame] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setFrame((f) => (f + 1) % SPINNER_FRAMES.length), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return (
    <Text wrap="truncate-end">
      <Text color={theme.accent}>{SPINNER_FRAMES[frame]}</Text> {label}
    </Text>
  );
}
