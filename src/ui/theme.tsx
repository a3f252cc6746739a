/**
 * Colours of the UI, or none: `NO_COLOR` (and `TERM=dumb`, or no TTY) give a theme whose colours
 * are all undefined, so views pass them straight to Ink's `color` props. Emphasis that is not
 * colour (bold, inverse) stays, so the selection is still visible without colour.
 */
import { createContext, useContext } from 'react';

export interface Theme {
  color: boolean;
  accent: string | undefined;
  muted: string | undefined;
  ok: string | undefined;
  warn: string | undefined;
  error: string | undefined;
}

export function createTheme(color: boolean): Theme {
  return color
    ? { color, accent: 'cyan', muted: 'gray', ok: 'green', warn: 'yellow', error: 'red' }
    : { color, accent: undefined, muted: undefined, ok: undefined, warn: undefined, error: undefined };
}

export const ThemeContext = createContext<Theme>(createTheme(false));

export function useTheme(): Theme {
  return useContext(ThemeContext);
}
