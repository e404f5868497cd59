/**
 * Time as the timing logic sees it (the silence guard, the probe, the
 * reconnect backoff, the lease keep-alive). Injected through options, so
 * unit tests advance a fake clock instead of racing real sleeps.
 *
 * @module
 */

import { delay } from "./delay.ts";

/** A monotonic clock and a way to wait on it. */
export interface Clock {
  /** Milliseconds on a monotonic clock, as `performance.now()`. */
  now(): number;
  /** Resolves after `ms` of this clock; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The process's own clock: `performance.now()` and timers. */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: (): number => performance.now(),
  sleep: (ms: number, signal?: AbortSignal): Promise<void> => delay(ms, signal),
});
