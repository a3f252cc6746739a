/**
 * One mount of an Ink app on the terminal: render, wait until it exits (or `signal` aborts, which
 * unmounts it), and let go of the abort listener. Ctrl+C is the app's own key, and the console is
 * left alone.
 */
import type { ReactElement } from 'react';
import { render } from 'ink';

export interface MountOptions {
  stdin: NodeJS.ReadStream;
  /** @default process.stdout */
  stdout?: NodeJS.WriteStream | undefined;
  signal?: AbortSignal | undefined;
}

export async function mountUntilExit(node: ReactElement, options: MountOptions): Promise<void> {
  const instance = render(node, {
    stdin: options.stdin,
    stdout: options.stdout ?? process.stdout,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  const onAbort = () => instance.unmount();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await instance.waitUntilExit();
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
