/**
 * The fault suite's checker: a pure function from a run's history and the
 * data read back from the primary the sentinels name (after healing and a
 * full resync) to the figures of the report. No I/O; unit-tested.
 */

import type { Entry, Hold, Mark, Op } from "./history.ts";

/** What the primary holds after the run. */
export interface FinalState {
  /** Keys written by `set` operations that exist. */
  readonly setKeys: ReadonlySet<string>;
  /** Every value of the `rpush` list, in order (duplicates kept). */
  readonly listValues: readonly string[];
  /** How often each appended event id is stored. */
  readonly eventIds: ReadonlyMap<string, number>;
  /** Per lease, the fenced writes in the order the server applied them. */
  readonly fenced: ReadonlyMap<string, readonly { id: string; token: number; holder: string }[]>;
}

/** One acknowledged write that is missing or stored twice, and why that matters. */
export interface Finding {
  readonly kind: string;
  readonly id: string;
  readonly detail: string;
}

/** The checker's verdict. */
export interface Verdict {
  readonly invoked: number;
  readonly acked: number;
  readonly failed: number;
  readonly unknown: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Definite failures whose write is present anyway (a definite failure must mean "not applied"). */
  readonly failedButPresent: number;
  readonly fencingViolations: number;
  readonly holderOverlapMs: number;
  readonly maxHolderOverlapMs: number;
  readonly longestUnavailableMs: number;
  readonly grants: number;
  readonly findings: readonly Finding[];
}

/** How many times the write of `op` is present in the final state. */
function presence(op: Op, state: FinalState): number {
  switch (op.kind) {
    case "set":
      return state.setKeys.has(op.id) ? 1 : 0;
    case "rpush":
      return state.listValues.filter((v) => v === op.id).length;
    case "append":
      return state.eventIds.get(op.id) ?? 0;
    case "fenced":
      return [...(state.fenced.get(op.lease ?? "") ?? [])].filter((w) => w.id === op.id).length;
    case "read":
      return 0;
  }
}

/** Total and longest time two different holders both believed they held the same lease. */
export function holderOverlap(holds: readonly Hold[]): { totalMs: number; maxMs: number } {
  let totalMs = 0;
  let maxMs = 0;
  for (let i = 0; i < holds.length; i++) {
    for (let j = i + 1; j < holds.length; j++) {
      const a = holds[i];
      const b = holds[j];
      if (a!.lease !== b!.lease || a!.holder === b!.holder) continue;
      const overlap = Math.max(0, Math.min(a!.to, b!.to) - Math.max(a!.from, b!.from));
      totalMs += overlap;
      maxMs = Math.max(maxMs, overlap);
    }
  }
  return { totalMs, maxMs };
}

/** The longest stretch, within [start, end], with no acknowledged write completing. */
export function longestGap(okTimes: readonly number[], start: number, end: number): number {
  const times = [start, ...[...okTimes].sort((a, b) => a - b), end];
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  return longest;
}

/** Checks a run. `end` is when the workload stopped (ms on the history's clock). */
export function check(entries: readonly Entry[], state: FinalState, end: number): Verdict {
  const ops = entries.filter((e): e is Op => e.type === "op" && e.kind !== "read");
  const holds = entries.filter((e): e is Hold => e.type === "hold");
  const marks = entries.filter((e): e is Mark => e.type === "mark" && e.what === "fault");
  const findings: Finding[] = [];
  let lost = 0;
  let duplicated = 0;
  let failedButPresent = 0;
  for (const op of ops) {
    const n = presence(op, state);
    if (op.outcome === "ok" && n === 0) {
      lost++;
      findings.push({
        kind: "lost",
        id: `${op.kind} ${op.id}`,
        detail: `acknowledged at ${Math.round(op.completedAt ?? 0)}ms${
          faultNear(marks, op.completedAt ?? 0)
        }, absent from the final primary`,
      });
    }
    if (n > 1) {
      duplicated++;
      findings.push({ kind: "duplicated", id: `${op.kind} ${op.id}`, detail: `stored ${n} times` });
    }
    if (op.outcome === "failed" && n > 0) {
      failedButPresent++;
      findings.push({
        kind: "failed-but-present",
        id: `${op.kind} ${op.id}`,
        detail: `reported failed (${op.error}) yet stored`,
      });
    }
  }
  // Fencing: in server order, a lease's accepted tokens never go down, and one token has one holder.
  let fencingViolations = 0;
  for (const [lease, writes] of state.fenced) {
    const holderOf = new Map<number, string>();
    let highest = -Infinity;
    for (const w of writes) {
      if (w.token < highest) {
        fencingViolations++;
        findings.push({
          kind: "fencing",
          id: `${lease} ${w.id}`,
          detail: `accepted under token ${w.token} after token ${highest}`,
        });
      }
      highest = Math.max(highest, w.token);
      const other = holderOf.get(w.token);
      if (other !== undefined && other !== w.holder) {
        fencingViolations++;
        findings.push({
          kind: "fencing",
          id: `${lease} ${w.id}`,
          detail: `token ${w.token} accepted from ${w.holder} and ${other}`,
        });
      }
      holderOf.set(w.token, w.holder);
    }
  }
  // Grants: a new holder's token is above every earlier grant's, failovers included.
  const grants = [...holds].sort((a, b) => a.from - b.from);
  for (const lease of new Set(grants.map((g) => g.lease))) {
    let last: Hold | undefined;
    for (const g of grants.filter((x) => x.lease === lease)) {
      if (last !== undefined && g.holder !== last.holder && g.token <= last.token) {
        fencingViolations++;
        findings.push({
          kind: "fencing",
          id: `${lease} grant to ${g.holder}`,
          detail: `token ${g.token} not above the previous grant's ${last.token} (${last.holder})`,
        });
      }
      last = g;
    }
  }
  const overlap = holderOverlap(holds);
  const okTimes = ops.filter((o) => o.outcome === "ok" && o.kind !== "fenced").map((o) =>
    o.completedAt ?? 0
  );
  return {
    invoked: ops.length,
    acked: ops.filter((o) => o.outcome === "ok").length,
    failed: ops.filter((o) => o.outcome === "failed").length,
    unknown: ops.filter((o) => o.outcome === "unknown").length,
    lost,
    duplicated,
    failedButPresent,
    fencingViolations,
    holderOverlapMs: Math.round(overlap.totalMs),
    maxHolderOverlapMs: Math.round(overlap.maxMs),
    longestUnavailableMs: Math.round(longestGap(okTimes, 0, end)),
    grants: holds.length,
    findings,
  };
}

/** Which fault a moment belongs to, for findings: " during …" or " 120ms before …". */
function faultNear(marks: readonly Mark[], at: number): string {
  const during = marks.find((m) => m.from <= at && at <= (m.to ?? Infinity));
  if (during !== undefined) return ` during "${during.label}"`;
  const next = marks.filter((m) => m.from > at).sort((a, b) => a.from - b.from)[0];
  if (next !== undefined && next.from - at < 5000) {
    return ` ${Math.round(next.from - at)}ms before "${next.label}"`;
  }
  return "";
}
