/** Resolves on the first of `signals` to arrive; `dispose()` removes the handlers. */
export function untilSignal(signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let resolve: (signal: NodeJS.Signals) => void = () => {};
  const promise = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onSignal = (signal: NodeJS.Signals) => resolve(signal);
  for (const signal of signals) process.on(signal, onSignal);
  return {
    promise,
    dispose() {
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
}
