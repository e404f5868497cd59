/**
 * Exponential backoff with jitter.
 *
 * @module
 */

/** Options for {@link backoffDelayMs}. */
export interface BackoffOptions {
  /** Delay cap for the first retry (`MN_REDIS_RECONNECT_BACKOFF_MS`). */
  backoffMs: number;
  /** Upper bound for any delay (`MN_REDIS_RECONNECT_MAX_BACKOFF_MS`). */
  maxBackoffMs: number;
  /** Random source in [0, 1). @default {Math.random} */
  random?: (() => number) | undefined;
}

/**
 * Delay before retry number `retry` (1 for the first retry): the cap doubles
 * from `backoffMs` up to `maxBackoffMs`, and the delay is drawn uniformly from
 * the upper half of the cap ("equal jitter"), so clients that failed together
 * do not retry together, yet each waits at least half the cap.
 *
 * @example
 * ```ts
 * import { backoffDelayMs } from "./backoff.ts";
 * const delay = backoffDelayMs(3, { backoffMs: 250, maxBackoffMs: 2000, random: () => 0 });
 * if (delay !== 500) throw new Error(`expected 500, got ${delay}`);
 * ```
 */
export function backoffDelayMs(retry: number, options: BackoffOptions): number {
  if (!Number.isInteger(retry) || retry < 1) {
    throw new RangeError(`retry must be a whole number >= 1, got ${retry}`);
  }
  if (options.backoffMs <= 0 || options.maxBackoffMs < options.backoffMs) {
    throw new RangeError(
      `backoff must satisfy 0 < backoffMs <= maxBackoffMs, got ${options.backoffMs} and ${options.maxBackoffMs}`,
    );
  }
  const cap = Math.min(options.maxBackoffMs, options.backoffMs * 2 ** Math.min(retry - 1, 30));
  const random = options.random ?? Math.random;
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** The smallest and largest total wait over `attempts` attempts (attempts - 1 delays). */
export function totalBackoffRangeMs(
  attempts: number,
  options: Omit<BackoffOptions, "random">,
): { min: number; max: number } {
  let min = 0;
  let max = 0;
  for (let retry = 1; retry < attempts; retry++) {
    min += backoffDelayMs(retry, { ...options, random: () => 0 });
    max += backoffDelayMs(retry, { ...options, random: () => 1 });
  }
  return { min, max };
}
