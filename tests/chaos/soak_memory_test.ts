import { assert, assertEquals } from "../_harness/assert.ts";
import { memoryGrowth, type MemorySample } from "../../scripts/soak_memory.ts";

/** `n` failovers whose heap and RSS follow `mb(failover)`. */
function samples(n: number, mb: (k: number) => number): MemorySample[] {
  return Array.from({ length: n }, (_, i) => ({
    failover: i + 1,
    heapMb: mb(i + 1),
    rssMb: 100 + mb(i + 1),
  }));
}

Deno.test("memoryGrowth judges the second half: a warm-up that settles passes, a steady leak fails", () => {
  // 4 MB of warm-up over the first 20 failovers, then flat.
  const warm = memoryGrowth(samples(100, (k) => 10 + 4 * Math.min(k, 20) / 20));
  assertEquals(warm.growth.map((g) => g.from), [3, 20, 50]);
  assert(warm.growth[0]!.heapMbPer100! > 1, "from the 3rd on, the warm-up shows");
  assertEquals([warm.growth[2]!.heapMbPer100, warm.growth[2]!.rssMbPer100], [0, 0]);
  assertEquals(warm.pass, true);
  // 2 KB per failover: 0.2 MB per 100 passes; 20 KB per failover (2 MB per 100) fails.
  assertEquals(memoryGrowth(samples(100, (k) => 10 + 0.002 * k)).pass, true);
  const leak = memoryGrowth(samples(100, (k) => 10 + 0.02 * k));
  assertEquals(leak.growth[2]!.heapMbPer100, 2);
  assertEquals(leak.pass, false);
});

Deno.test("memoryGrowth does not judge too few failovers", () => {
  assertEquals(memoryGrowth([]).pass, null);
  assertEquals(memoryGrowth(samples(3, () => 10)), { growth: [], pass: null });
  const short = memoryGrowth(samples(6, (k) => k));
  assertEquals(short.growth.map((g) => g.from), [3]);
  assertEquals(short.growth[0]!.heapMbPer100, 100);
});
