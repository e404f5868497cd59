/**
 * A clock for unit tests of timing logic: time moves only when the test
 * advances it, and sleepers wake in order as it passes their deadline.
 */

import type { Clock } from "../../lib/common/clock.ts";

interface Sleeper {
  readonly at: number;
  readonly wake: () => void;
}

/** A {@link Clock} a test drives with {@link FakeClock.advance}. */
export class FakeClock implements Clock {
  #now: number;
  readonly #sleepers = new Set<Sleeper>();

  /** Starts at `start` ms. */
  constructor(start = 1_000) {
    this.#now = start;
  }

  /** The current fake time. */
  now(): number {
    return this.#now;
  }

  /**
   * Resolves once the clock is advanced `ms` past now (at once for 0);
   * rejects when `signal` aborts first.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const sleeper: Sleeper = {
        at: this.#now + ms,
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#sleepers.delete(sleeper);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.add(sleeper);
    });
  }

  /** How many sleepers wait. */
  get sleeping(): number {
    return this.#sleepers.size;
  }

  /**
   * Moves time forward by `ms`, waking every sleeper whose deadline passed
   * (earliest first), and lets the woken code run before returning.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    while (true) {
      const due = [...this.#sleepers].filter((s) => s.at <= until).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#sleepers.delete(due);
      this.#now = Math.max(this.#now, due.at);
      due.wake();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

/** Lets pending promise callbacks run (a few turns of the microtask queue and one macrotask). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => queueMicrotask(resolve));
}
