import { assertEquals } from "../_harness/assert.ts";
import {
  describeClockSteps,
  STEP_THRESHOLD_MS,
  watchWallClock,
} from "../../scripts/chaos/wall_clock_watch.ts";

Deno.test("describeClockSteps() names each step with its sign and time, or says there was none", () => {
  assertEquals(describeClockSteps([]), `wall clock: no step above ${STEP_THRESHOLD_MS} ms`);
  assertEquals(
    describeClockSteps([{ at: 12_345, stepMs: 5000 }, { at: 14_500, stepMs: -5001 }]),
    "wall clock stepped +5000 ms at 12.3 s, -5001 ms at 14.5 s",
  );
});

Deno.test("watchWallClock() sees no step while the wall clock runs with the monotonic one, and stops when disposed", async () => {
  const watch = watchWallClock(() => performance.now());
  try {
    // Three comparisons at least, with no step on this machine in between.
    const until = performance.now() + 350;
    while (performance.now() < until) await new Promise((r) => setTimeout(r, 50));
    assertEquals(watch.steps(), []);
  } finally {
    watch[Symbol.dispose]();
  }
  // (The test sanitizer fails the test if the interval outlived the dispose.)
});
