import { assert, assertEquals } from "../_harness/assert.ts";
import { check, type FinalState, holderOverlap, longestGap } from "../../scripts/chaos/checker.ts";
import type { Entry, Hold, Op } from "../../scripts/chaos/history.ts";

function op(kind: Op["kind"], id: string, outcome: Op["outcome"], at: number, extra = {}): Op {
  return { type: "op", kind, id, invokedAt: at - 1, completedAt: at, outcome, ...extra };
}

function hold(lease: string, holder: string, token: number, from: number, to: number): Hold {
  return { type: "hold", lease, holder, token, from, to };
}

const EMPTY: FinalState = {
  setKeys: new Set(),
  listValues: [],
  eventIds: new Map(),
  fenced: new Map(),
};

Deno.test("check() counts an acknowledged write missing from the final primary as lost", () => {
  const entries: Entry[] = [op("set", "k1", "ok", 10), op("set", "k2", "ok", 20)];
  const v = check(entries, { ...EMPTY, setKeys: new Set(["k1"]) }, 100);
  assertEquals([v.invoked, v.acked, v.lost, v.duplicated], [2, 2, 1, 0]);
  assertEquals(v.findings.map((f) => f.kind), ["lost"]);
  const withFault = check(
    [
      { type: "mark", what: "fault", label: "isolate box 1", from: 15, to: 40 },
      ...entries,
    ],
    { ...EMPTY, setKeys: new Set(["k1"]) },
    100,
  );
  assert(
    withFault.findings[0]!.detail.includes('during "isolate box 1"'),
    withFault.findings[0]!.detail,
  );
});

Deno.test("check() counts a value stored twice as duplicated and unknown outcomes apart", () => {
  const entries: Entry[] = [
    op("rpush", "v1", "ok", 10),
    op("rpush", "v2", "unknown", 20),
    op("append", "e1", "ok", 30),
  ];
  const v = check(entries, {
    ...EMPTY,
    listValues: ["v1", "v1", "v2"],
    eventIds: new Map([["e1", 1]]),
  }, 100);
  assertEquals([v.lost, v.duplicated, v.unknown], [0, 1, 1]);
});

Deno.test("check() flags a definite failure whose write is present anyway", () => {
  const v = check([op("set", "k", "failed", 10, { error: "RetriesExhaustedError" })], {
    ...EMPTY,
    setKeys: new Set(["k"]),
  }, 100);
  assertEquals(v.failedButPresent, 1);
});

Deno.test("check() finds fencing violations: a lower token after a higher one, one token for two holders, a grant not above the last", () => {
  const fenced = new Map([["leader", [
    { id: "a", token: 5, holder: "x" },
    { id: "b", token: 7, holder: "y" },
    { id: "c", token: 6, holder: "x" },
    { id: "d", token: 7, holder: "z" },
  ]]]);
  const holds = [
    hold("leader", "x", 5, 0, 10),
    hold("leader", "y", 7, 20, 30),
    hold("leader", "z", 7, 40, 50),
  ];
  const v = check(holds, { ...EMPTY, fenced }, 100);
  assertEquals(v.fencingViolations, 3);
  const clean = check([
    hold("leader", "x", 5, 0, 10),
    hold("leader", "x", 5, 11, 20),
    hold("leader", "y", 9, 30, 40),
  ], {
    ...EMPTY,
    fenced: new Map([["leader", [{ id: "a", token: 5, holder: "x" }, {
      id: "b",
      token: 9,
      holder: "y",
    }]]]),
  }, 100);
  assertEquals(clean.fencingViolations, 0);
});

Deno.test("holderOverlap() sums the time two holders of one lease both believed they held it", () => {
  const o = holderOverlap([
    hold("leader", "a", 1, 0, 100),
    hold("leader", "b", 2, 90, 200),
    hold("leader", "c", 3, 150, 160),
    hold("job", "d", 1, 0, 300),
  ]);
  assertEquals(o, { totalMs: 10 + 10, maxMs: 10 });
  assertEquals(holderOverlap([hold("l", "a", 1, 0, 10), hold("l", "a", 1, 5, 20)]).totalMs, 0);
});

Deno.test("longestGap() is the longest stretch without an acknowledged write, edges included", () => {
  assertEquals(longestGap([10, 20, 90], 0, 100), 70);
  assertEquals(longestGap([], 0, 100), 100);
  assert(longestGap([50], 0, 60) === 50);
});
