/**
 * Waiting for a stated condition with a deadline, reporting the last observed
 * state on timeout. Used instead of sleeps everywhere.
 *
 * @module
 */

import { delay } from "./delay.ts";
import { formatMs } from "./quote.ts";
import { RedisHaError } from "./errors.ts";

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** What is being waited for, for the timeout message. */
  what: string;
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause between checks. @default {50} */
  intervalMs?: number | undefined;
  /** Aborts the wait. */
  signal?: AbortSignal | undefined;
}

/** A condition did not hold before its deadline. */
export class WaitTimeoutError extends RedisHaError {
  /** Error class name. */
  override readonly name = "WaitTimeoutError";
  /** The last state the check observed. */
  readonly lastObserved: string;

  /** Creates the error. */
  constructor(what: string, timeoutMs: number, lastObserved: string) {
    super(
      "CONNECTION",
      `Timed out after ${formatMs(timeoutMs)} waiting for ${what}; last observed: ${lastObserved}`,
    );
    this.lastObserved = lastObserved;
  }
}

/** What a check returns: done with a value, or not yet with what it saw. */
export type WaitCheck<T> = { done: true; value: T } | { done: false; observed: string };

/**
 * Runs `check` until it reports done or the deadline passes. A check that
 * throws counts as "not yet", with the error as the observed state.
 */
export async function waitFor<T>(
  check: () => Promise<WaitCheck<T>> | WaitCheck<T>,
  options: WaitForOptions,
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  let observed = "nothing yet";
  while (true) {
    options.signal?.throwIfAborted();
    try {
      const result = await check();
      if (result.done) return result.value;
      observed = result.observed;
    } catch (error) {
      observed = error instanceof Error ? error.message : String(error);
    }
    const left = deadline - performance.now();
    if (left <= 0) throw new WaitTimeoutError(options.what, options.timeoutMs, observed);
    await delay(Math.min(options.intervalMs ?? 50, left), options.signal);
  }
}
