/**
 * Steps of the machine's wall clock during a run. Redis expires keys by the
 * wall clock (a lease key's TTL included) and Sentinel enters TILT on a step,
 * while the library and the history time everything on the monotonic clock:
 * a forward step shortens every lease on the server at once. Every box of a
 * run shares this machine's kernel, so this process's clock is theirs.
 *
 * @module
 */

/** One step: when (ms on the watcher's monotonic clock) and by how much (ms, + forward). */
export interface ClockStep {
  readonly at: number;
  readonly stepMs: number;
}

/** How often the wall clock is compared with the monotonic one. */
const WATCH_EVERY_MS = 100;
/** A change of the offset above this is a step (far above timer jitter, below a lease's margin). */
export const STEP_THRESHOLD_MS = 250;

/**
 * Watches `Date.now() - performance.now()` every 100 ms and records every
 * change above {@link STEP_THRESHOLD_MS}. `now` gives the `at` of a step
 * (the history's clock); dispose to stop.
 */
export function watchWallClock(now: () => number): Disposable & { steps(): readonly ClockStep[] } {
  const steps: ClockStep[] = [];
  let offset = Date.now() - performance.now();
  const timer = setInterval(() => {
    const current = Date.now() - performance.now();
    const stepMs = current - offset;
    offset = current;
    if (Math.abs(stepMs) > STEP_THRESHOLD_MS) steps.push({ at: now(), stepMs: Math.round(stepMs) });
  }, WATCH_EVERY_MS);
  return {
    steps: () => steps,
    [Symbol.dispose]: () => clearInterval(timer),
  };
}

/** One line for a report: the steps, or that there were none. */
export function describeClockSteps(steps: readonly ClockStep[]): string {
  if (steps.length === 0) return `wall clock: no step above ${STEP_THRESHOLD_MS} ms`;
  return `wall clock stepped ${
    steps.map((s) => `${s.stepMs > 0 ? "+" : ""}${s.stepMs} ms at ${(s.at / 1000).toFixed(1)} s`)
      .join(", ")
  }`;
}
