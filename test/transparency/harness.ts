/**
 * Transparency suites, for any protocol: one table of scenarios, each run straight against the
 * server and then through every broker path, and what the client observed compared. A protocol
 * brings its endpoint type (how a scenario opens connections on one path) and its scenarios; a
 * scenario returns plain data — the messages the client received, decoded, with only what
 * legitimately differs normalised (the README's broker sections list each normalisation). The
 * direct run must also pass the scenario's own check, so a scenario that fails the same way on
 * every path (a typo in its SQL, a server that is down) fails the test instead of comparing
 * equal.
 */
import { describe, expect, it } from 'vitest';

/** One way to reach the server: straight, or through a broker configured one way. */
export interface Path<E> {
  name: string;
  /** The endpoint of this path; called inside the test, once the suite's `beforeAll` has run. */
  endpoint: () => E;
  /**
   * Scenarios whose observation legitimately differs on this path, by scenario name: `normalise`
   * maps both the direct and this path's observation to what must still be equal, and `why` names
   * the README line that says why (a pool's pins, its pids, …). Nothing else is forgiven.
   */
  differs?: Readonly<Record<string, { why: string; normalise: (observed: any) => unknown }>>;
}

export interface Scenario<E, O = unknown> {
  name: string;
  /** Runs the scenario on one path and returns what the client observed. */
  run: (endpoint: E) => Promise<O>;
  /** Asserts what the direct run must show: that the scenario did what it is named for. */
  check: (observed: O) => void;
  /** @default 30_000 */
  timeoutMs?: number;
}

/** Declares one test per scenario: direct first, then every path compared with it. */
export function describeTransparency<E>(title: string, suite: { direct: Path<E>; through: ReadonlyArray<Path<E>>; scenarios: ReadonlyArray<Scenario<E, any>> }): void {
  describe(title, () => {
    for (const scenario of suite.scenarios) {
      it(
        scenario.name,
        async () => {
          const expected = await scenario.run(suite.direct.endpoint());
          scenario.check(expected);
          for (const path of suite.through) {
            const observed = await scenario.run(path.endpoint());
            const known = path.differs?.[scenario.name];
            const label = `"${scenario.name}" through ${path.name} differs from ${suite.direct.name}${known ? ` beyond what it may (${known.why})` : ''}`;
            expect.soft(known ? known.normalise(observed) : observed, label).toEqual(known ? known.normalise(expected) : expected);
          }
        },
        scenario.timeoutMs ?? 30_000,
      );
    }
  });
}

/** A scenario table with a name per row, for `describeTransparency`: `scenario('name', run, check)`. */
export function scenario<E, O>(name: string, run: (endpoint: E) => Promise<O>, check: (observed: O) => void, timeoutMs?: number): Scenario<E, O> {
  return { name, run, check, ...(timeoutMs === undefined ? {} : { timeoutMs }) };
}
