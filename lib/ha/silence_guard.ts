/**
 * The guard against a primary that went silent and came back after Sentinel
 * had replaced it.
 *
 * A primary that is paused (SIGSTOP, a VM freeze, a long fork) past
 * Sentinel's `down-after-milliseconds` gets failed over while it cannot
 * notice. When it runs again it still says `ROLE master`, and the replicas
 * Sentinel has not yet pointed at the new primary still follow it, so a
 * write it takes then passes `WAIT` — and is discarded a moment later, when
 * Sentinel re-points those replicas and demotes the old primary. Neither the
 * reply nor `WAIT` nor `ROLE` can tell; only the sentinels know.
 *
 * So the guard notes when each primary was last heard from (any bytes on
 * the client's connections to it). A gap of half the sentinels'
 * `down-after-milliseconds` or more marks that primary suspect: a durable
 * write acknowledged there is confirmed only once the sentinels, asked
 * after its acknowledgement, report no failover of it (see
 * {@link failoverEvidence}). One clean answer that was asked for after the
 * silence ended clears the suspicion; until then, every durable write on
 * that primary waits for such an answer, shared by all writes that were
 * acknowledged before it was asked for.
 *
 * @module
 */

import { type Clock, SYSTEM_CLOCK } from "../common/clock.ts";
import { failoverEvidence, type SentinelAnswer } from "./resolver_decision.ts";

/** A silence that ended: when, and how long it lasted. */
interface Silence {
  readonly endedAt: number;
  readonly gapMs: number;
}

/** One question to the sentinels, shared by every write acknowledged before it was asked. */
interface Check {
  readonly askedAt: number;
  readonly evidence: Promise<string | undefined>;
}

/** Tracks silences of primaries and confirms suspect acknowledgements with the sentinels. */
export class SilenceGuard {
  readonly #ask: () => Promise<readonly SentinelAnswer[]>;
  readonly #clock: Clock;
  readonly #heardAt = new Map<string, number>();
  readonly #silences = new Map<string, Silence>();
  readonly #checks = new Map<string, Check>();
  /** When each address began refusing writes (`MISCONF`), until a check clears it. */
  readonly #refusingSince = new Map<string, number>();
  /** Why a sentinel event put each address in doubt (see {@link doubted}), until a check clears it. */
  readonly #doubts = new Map<string, string>();
  #thresholdMs: number | undefined;

  /**
   * `ask` queries every sentinel (waiting for all, each within its
   * deadline); `clock` times the silences.
   */
  constructor(ask: () => Promise<readonly SentinelAnswer[]>, clock: Clock = SYSTEM_CLOCK) {
    this.#ask = ask;
    this.#clock = clock;
  }

  /** The silence that makes a primary suspect: half of `down-after-milliseconds`. */
  get thresholdMs(): number | undefined {
    return this.#thresholdMs;
  }

  /**
   * Takes the sentinels' shortest `down-after-milliseconds`; without one the
   * guard stays off (nothing is known about how soon a failover may start).
   */
  setDownAfter(downAfterMs: number | undefined): void {
    this.#thresholdMs = downAfterMs === undefined ? undefined : downAfterMs / 2;
  }

  /**
   * Called when the sentinels name `address` (at `at`): a primary never
   * heard from counts as heard from then, so a connection that hangs after
   * the resolution is a silence too.
   */
  named(address: string, at: number): void {
    if (!this.#heardAt.has(address)) this.#heardAt.set(address, at);
  }

  /**
   * Called when `address` refused a write because it cannot persist
   * (`MISCONF`). Such a node refuses Sentinel's PINGs too, so the sentinels
   * may see it down and fail over while it recovers and acknowledges writes
   * that the failover then discards: until the sentinels are asked after
   * its refusals, its acknowledgements count only as a silent primary's do.
   */
  refused(address: string): void {
    const now = this.#clock.now();
    const since = this.#refusingSince.get(address) ?? now;
    this.#refusingSince.set(address, since);
    this.#silences.set(address, { endedAt: now, gapMs: now - since });
  }

  /**
   * Called when a sentinel reports `address` objectively down (`+odown`,
   * described by `why`): a failover of it may start at once. Sentinel's
   * occasional second failover promotes another node right after a first
   * one, while the node it replaces still says `ROLE master` and may keep a
   * replica (a box that just rejoined) that passes `WAIT`; what it
   * acknowledges then is discarded. So, as after a silence, its
   * acknowledgements count only once the sentinels, asked after them, report
   * no failover of it.
   */
  doubted(address: string, why: string): void {
    this.#doubts.set(address, why);
    this.#silences.set(address, { endedAt: this.#clock.now(), gapMs: 0 });
  }

  /** Called whenever bytes arrive from `address` (before its replies are delivered). */
  heard(address: string): void {
    const now = this.#clock.now();
    const last = this.#heardAt.get(address);
    this.#heardAt.set(address, now);
    if (last === undefined || this.#thresholdMs === undefined) return;
    const gapMs = now - last;
    if (gapMs >= this.#thresholdMs) this.#silences.set(address, { endedAt: now, gapMs });
  }

  /** True while `address` went silent and no clean answer has cleared it since. */
  suspect(address: string): boolean {
    return this.#silences.has(address);
  }

  /**
   * For a write on `address` acknowledged at `ackedAt` (or earlier): undefined
   * when the primary is not suspect or the sentinels, asked at `ackedAt` or
   * later, report no failover of it (`configEpoch`: the epoch it was resolved
   * at); otherwise what makes the acknowledgement untrustworthy.
   */
  async confirm(
    address: string,
    configEpoch: number,
    ackedAt: number,
  ): Promise<string | undefined> {
    while (true) {
      const silence = this.#silences.get(address);
      if (silence === undefined) return undefined;
      const current = this.#checks.get(address);
      if (current !== undefined && current.askedAt >= ackedAt) {
        return await current.evidence;
      }
      if (current !== undefined) {
        await current.evidence;
        continue;
      }
      const askedAt = this.#clock.now();
      const evidence = this.#check(address, configEpoch, askedAt, silence);
      const check = { askedAt, evidence };
      this.#checks.set(address, check);
      void evidence.finally(() => {
        if (this.#checks.get(address) === check) this.#checks.delete(address);
      });
      return await evidence;
    }
  }

  async #check(
    address: string,
    configEpoch: number,
    askedAt: number,
    silence: Silence,
  ): Promise<string | undefined> {
    const doubt = this.#doubts.get(address);
    const silent = this.#refusingSince.has(address)
      ? `${address} refused writes (it could not persist) for ${Math.round(silence.gapMs)}ms`
      : doubt !== undefined
      ? `${address} ${doubt}`
      : `${address} was silent for ${Math.round(silence.gapMs)}ms`;
    let evidence: string | undefined;
    try {
      evidence = failoverEvidence(await this.#ask(), address, configEpoch);
    } catch (error) {
      evidence = `the sentinels could not be asked (${
        error instanceof Error ? error.message : String(error)
      })`;
    }
    if (evidence !== undefined) return `${silent} and ${evidence}`;
    // Clean: clears the silence this answer was asked after (not a newer one).
    const latest = this.#silences.get(address);
    if (latest !== undefined && latest.endedAt <= askedAt) {
      this.#silences.delete(address);
      this.#refusingSince.delete(address);
      this.#doubts.delete(address);
    }
    return undefined;
  }
}
