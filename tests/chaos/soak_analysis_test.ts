import { assert, assertEquals } from "../_harness/assert.ts";
import {
  baselineLeaks,
  leakBaseline,
  leaksSince,
  type Sample,
  slope,
  soakVerdicts,
} from "../../scripts/soak/analysis.ts";
import type { Verdict } from "../../scripts/chaos/checker.ts";

const clean: Verdict = {
  invoked: 100,
  acked: 100,
  failed: 0,
  unknown: 0,
  lost: 0,
  duplicated: 0,
  failedButPresent: 0,
  fencingViolations: 0,
  holderOverlapMs: 0,
  maxHolderOverlapMs: 0,
  longestUnavailableMs: 0,
  grants: 1,
  findings: [],
};

/** A sample every minute: `failovers` by then, the worker's RSS `rss(i)`, fds and connections. */
function series(
  n: number,
  rss: (i: number) => number,
  counts: (i: number) => { fds: number; redis: number } = () => ({ fds: 30, redis: 12 }),
): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    at: i * 60_000,
    failovers: i,
    settled: true,
    processes: [{ name: "clients-1", rssMb: rss(i), heapMb: 10, fds: counts(i).fds, tcp: 8 }],
    redis: [{ box: 1, usedMemoryMb: 1, connectedClients: counts(i).redis }],
    sentinels: [{ box: 1, connectedClients: 20 }],
  }));
}

Deno.test("slope() is the least-squares slope, undefined without two distinct x", () => {
  assertEquals(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }]), 2);
  assertEquals(slope([{ x: 1, y: 1 }, { x: 1, y: 2 }]), undefined);
  assertEquals(slope([]), undefined);
});

Deno.test("soakVerdicts() judges memory growth per 100 failovers only over a long enough run", () => {
  const flat = soakVerdicts(series(20, () => 100), clean, {
    faults: [],
    durationMs: 0,
    everyMs: 0,
    clients: 1,
  });
  assert(flat.pass);
  assertEquals(flat.memory[0]!.rssPer100Failovers, 0);
  // 0.05 MB per failover is 5 MB per 100: a leak.
  const leaking = soakVerdicts(series(20, (i) => 100 + 0.05 * i), clean, {
    faults: [],
    durationMs: 0,
    everyMs: 0,
    clients: 1,
  });
  assert(!leaking.pass);
  assertEquals(leaking.memory[0]!.rssPer100Failovers, 5);
  // The same over 5 failovers: reported, not judged.
  const short = soakVerdicts(series(7, (i) => 100 + 0.05 * i), clean, {
    faults: [],
    durationMs: 0,
    everyMs: 0,
    clients: 1,
  });
  assert(short.pass);
  assert(short.verdicts.some((v) => v.pass === null && v.value.includes("not judged")));
  // The checker's zeros are required.
  assert(
    !soakVerdicts(series(20, () => 100), { ...clean, lost: 1 }, {
      faults: [],
      durationMs: 0,
      everyMs: 0,
      clients: 1,
    }).pass,
  );
});

Deno.test("baselineLeaks() reports counts above the first settled sample after the warm-up", () => {
  assertEquals(baselineLeaks(series(10, () => 100)), []);
  const leaks = baselineLeaks(
    series(10, () => 100, (i) => ({ fds: i >= 6 ? 31 : 30, redis: i === 8 ? 13 : 12 })),
  );
  assertEquals(leaks.length, 5);
  assert(leaks.some((l) => l.startsWith("clients-1: 31 fds at 360 s")), leaks.join("\n"));
  assert(
    leaks.some((l) => l.startsWith("Redis connected_clients (all nodes): 13")),
    leaks.join("\n"),
  );
});

Deno.test("leaksSince() names each count above the baseline; leakBaseline() is the first settled sample after the warm-up", () => {
  const samples = series(6, () => 100);
  const base = leakBaseline(samples)!;
  assertEquals(base.failovers >= 2 && base.settled, true);
  assertEquals(leaksSince(base, samples.at(-1)!), []);
  const above = samples.at(-1)!;
  const leaks = leaksSince(base, {
    ...above,
    processes: above.processes.map((p) => ({ ...p, fds: p.fds + 1 })),
    redis: above.redis.map((r) => ({ ...r, connectedClients: (r.connectedClients ?? 0) + 1 })),
  });
  assertEquals(leaks.length, above.processes.length + 1, leaks.join("; "));
  assert(leaks.some((l) => l.includes("fds")) && leaks.some((l) => l.includes("Redis")));
  // A node that did not answer is not counted.
  assertEquals(
    leaksSince(base, {
      ...above,
      redis: above.redis.map((r) => ({ ...r, connectedClients: null })),
    }),
    [],
  );
});
