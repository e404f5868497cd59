/**
 * A clock at an adjustable rate against true time, for the `clock` nemesis.
 *
 * @module
 */

import type { Clock } from "../../lib/common/clock.ts";

/**
 * A contender's clock, at an adjustable rate against true time (the `clock`
 * nemesis): 0.5 runs at half speed, so the contender's lease seems to last
 * twice as long to it. Injected through the lease's `clock` option; the
 * contender shares its process with the rest of the workload, which a
 * process-wide `faketime` would skew too (and `faketime` is not installed here).
 *
 * A sleep ends when this clock reaches its end, so a rate change re-times the
 * sleeps already running: a keep-alive deadline armed before the clock slowed
 * down ends as late as a slow clock would end it.
 */
export class SkewClock implements Clock {
  #rate = 1;
  #realBase = performance.now();
  #base = this.#realBase;
  readonly #sleepers = new Set<() => void>();

  /** Changes the rate from now on (time so far is kept; running sleeps are re-timed). */
  set rate(rate: number) {
    if (!(rate > 0) || !Number.isFinite(rate)) {
      throw new RangeError(`clock rate must be a positive number, got ${rate}`);
    }
    this.#base = this.now();
    this.#realBase = performance.now();
    this.#rate = rate;
    for (const retime of [...this.#sleepers]) retime();
  }

  /** The current rate. */
  get rate(): number {
    return this.#rate;
  }

  now(): number {
    return this.#base + (performance.now() - this.#realBase) * this.#rate;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const end = this.now() + ms;
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(retime);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = (): void => {
        finish();
        reject(signal?.reason);
      };
      const retime = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          finish();
          resolve();
        }, Math.max(0, (end - this.now()) / this.#rate));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.add(retime);
      retime();
    });
  }
}
