/**
 * How a replica proves a read is recent enough: the primary's replication
 * offset, sampled with `ROLE` on the primary, against the replica's own
 * applied offset, read with `ROLE` on the replica in the same pipeline as
 * the read.
 *
 * A sample `(offset O, sent at t, after write mark m)` says: every write the
 * primary had applied when the sample was sent is at an offset ≤ O. A
 * replica whose `ROLE` (sent before the read on the same connection) says it
 * follows that primary, is `connected` and has applied offset ≥ O therefore
 * serves the read from a state that holds every write the primary had
 * applied at `t`. A read issued at `issuedAt` after the client's writes up to
 * mark `m'` may use a sample when `t ≥ issuedAt - maxLagMs` (bounded lag)
 * and `m ≥ m'` (the sample was sent after those writes completed:
 * read-your-writes). Samples belong to one session: after a failover the
 * offsets of another node mean nothing here.
 *
 * Pure bookkeeping: no I/O, the caller sends the `ROLE`s.
 *
 * @module
 */

/** One `ROLE` of the primary: its replication offset when it answered. */
export interface OffsetSample<S> {
  /** `master_repl_offset` as `ROLE` reported it. */
  readonly offset: number;
  /** When the `ROLE` was sent (clock ms). */
  readonly sentAt: number;
  /** The write mark when it was sent: every write completed before is in `offset`. */
  readonly mark: number;
  /** The session (primary connection) it was taken on. */
  readonly session: S;
}

/** What a read needs of a sample: issued when, after which writes, with which bound. */
export interface ReadNeed<S> {
  /** When the read was issued (clock ms). */
  readonly issuedAt: number;
  /** The write mark when it was issued. */
  readonly mark: number;
  /** The bound: the sample may be at most this old when the read is issued. */
  readonly maxLagMs: number;
  /** The session in service when the read was issued. */
  readonly session: S;
}

/** How many samples are kept (older ones can only be less useful). */
const KEPT = 8;

/** The samples of the session in service and the client's write mark. */
export class ReadFreshness<S> {
  #mark = 0;
  #samples: OffsetSample<S>[] = [];
  #inFlight: { sentAt: number; mark: number; session: S; done: Promise<void> } | undefined;

  /** The current write mark: bumped by every write that completed (or may have been applied). */
  get mark(): number {
    return this.#mark;
  }

  /** A write completed (acknowledged, failed or unknown): later reads must see it. */
  wrote(): void {
    this.#mark++;
  }

  /** Records a sample; samples of another session are dropped. */
  add(sample: OffsetSample<S>): void {
    this.#samples = this.#samples.filter((s) => s.session === sample.session);
    this.#samples.push(sample);
    this.#samples.sort((a, b) => a.sentAt - b.sentAt);
    if (this.#samples.length > KEPT) this.#samples.splice(0, this.#samples.length - KEPT);
  }

  /** Whether `sample` may prove a read with `need` fresh enough. */
  static fits<S>(sample: Omit<OffsetSample<S>, "offset">, need: ReadNeed<S>): boolean {
    return sample.session === need.session && sample.sentAt >= need.issuedAt - need.maxLagMs &&
      sample.mark >= need.mark;
  }

  /**
   * The smallest offset a replica must have applied to serve `need`: the
   * oldest fitting sample's (offsets grow with time, so it is the easiest
   * to meet); undefined when no sample fits yet.
   */
  requiredOffset(need: ReadNeed<S>): number | undefined {
    let best: number | undefined;
    for (const s of this.#samples) {
      if (ReadFreshness.fits(s, need) && (best === undefined || s.offset < best)) best = s.offset;
    }
    return best;
  }

  /** Age of the newest sample of `session` at `now`, or Infinity when there is none. */
  newestAge(session: S, now: number): number {
    const newest = this.#samples.filter((s) => s.session === session).at(-1);
    return newest === undefined ? Infinity : now - newest.sentAt;
  }

  /**
   * Waits until a sample fits `need`, taking one with `take` when none does
   * and the one in flight (shared by every read waiting for it) will not.
   * `take` sends the `ROLE` on `need.session` and returns its offset; `now`
   * reads the clock. Rejects with `take`'s error.
   */
  async ensure(
    need: ReadNeed<S>,
    now: () => number,
    take: () => Promise<number>,
  ): Promise<number> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const required = this.requiredOffset(need);
      if (required !== undefined) return required;
      const flying = this.#inFlight;
      if (flying !== undefined && ReadFreshness.fits(flying, need)) await flying.done;
      else await this.#take(need.session, now, take);
    }
    const required = this.requiredOffset(need);
    if (required !== undefined) return required;
    throw new Error("no sample of the primary's offset fits the read");
  }

  /**
   * Takes a sample ahead of time (the newest is getting old), unless the one
   * in flight already is as recent as a new one would be. Never rejects.
   */
  refresh(session: S, now: () => number, take: () => Promise<number>): void {
    const flying = this.#inFlight;
    if (flying !== undefined && flying.mark >= this.#mark && flying.session === session) return;
    this.#take(session, now, take).catch(() => {});
  }

  #take(session: S, now: () => number, take: () => Promise<number>): Promise<void> {
    const sentAt = now();
    const mark = this.#mark;
    const done = take().then((offset) => {
      this.add({ offset, sentAt, mark, session });
    }).finally(() => {
      if (this.#inFlight?.done === done) this.#inFlight = undefined;
    });
    this.#inFlight = { sentAt, mark, session, done };
    return done;
  }
}
