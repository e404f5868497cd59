/**
 * The replica-read checker: a pure function from the acknowledged versions
 * of counters and the reads of them to every read that broke a guarantee of
 * `MN_REDIS_READ_FROM` (see the README's "Reading from replicas"). No I/O;
 * unit-tested.
 *
 * - **Bounded lag:** a read issued at `t` must see at least every version
 *   acknowledged (to anyone) before `t - maxLagMs`.
 * - **Read-your-writes:** a read by client `c` issued at `t` must see at
 *   least every version `c` itself had acknowledged before `t`.
 *
 * Times are the reader's and writer's own monotonic clock in one process;
 * an acknowledgement is recorded after the reply arrived and a read's issue
 * before it was sent, so both errors make the check more lenient, never
 * stricter than the guarantee.
 */

/** One acknowledged write: `key` was set to `version` (a counter that only grows). */
export interface AckedVersion {
  readonly key: string;
  readonly version: number;
  readonly client: string;
  /** When the acknowledgement arrived (ms). */
  readonly ackedAt: number;
}

/** One read of a counter. */
export interface ObservedRead {
  readonly key: string;
  readonly client: string;
  /** When it was issued (ms). */
  readonly issuedAt: number;
  /** The version it saw (0 for a missing key). */
  readonly version: number;
  /** Who served it: `replica` or `primary`. */
  readonly servedBy: string;
  /** The node that served it. */
  readonly node: string;
}

/** A read that broke a guarantee. */
export interface ReadViolation {
  readonly kind: "stale" | "read-your-writes";
  readonly read: ObservedRead;
  /** The version the guarantee required. */
  readonly required: number;
}

/** The checker's figures. */
export interface ReadVerdict {
  readonly reads: number;
  readonly byReplica: number;
  readonly byPrimary: number;
  readonly stale: number;
  readonly readYourWrites: number;
  /** Up to 20 violations, for the report. */
  readonly examples: readonly ReadViolation[];
}

/** Checks `reads` against `acks` with the lag bound `maxLagMs`. */
export function checkReads(
  acks: readonly AckedVersion[],
  reads: readonly ObservedRead[],
  maxLagMs: number,
): ReadVerdict {
  // Per key, acknowledgements by time, with the running highest version.
  const byKey = new Map<string, { at: number; max: number; client: string; version: number }[]>();
  for (const a of [...acks].sort((x, y) => x.ackedAt - y.ackedAt)) {
    const list = byKey.get(a.key) ?? [];
    const max = Math.max(list.at(-1)?.max ?? 0, a.version);
    list.push({ at: a.ackedAt, max, client: a.client, version: a.version });
    byKey.set(a.key, list);
  }
  const highestBefore = (key: string, t: number, client?: string): number => {
    let best = 0;
    for (const a of byKey.get(key) ?? []) {
      if (a.at >= t) break;
      if (client === undefined) best = a.max;
      else if (a.client === client) best = Math.max(best, a.version);
    }
    return best;
  };
  const violations: ReadViolation[] = [];
  let stale = 0;
  let ryw = 0;
  for (const r of reads) {
    const bound = highestBefore(r.key, r.issuedAt - maxLagMs);
    if (r.version < bound) {
      stale++;
      violations.push({ kind: "stale", read: r, required: bound });
    }
    const own = highestBefore(r.key, r.issuedAt, r.client);
    if (r.version < own) {
      ryw++;
      violations.push({ kind: "read-your-writes", read: r, required: own });
    }
  }
  return {
    reads: reads.length,
    byReplica: reads.filter((r) => r.servedBy === "replica").length,
    byPrimary: reads.filter((r) => r.servedBy !== "replica").length,
    stale,
    readYourWrites: ryw,
    examples: violations.slice(0, 20),
  };
}
