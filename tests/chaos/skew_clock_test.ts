import { assert, assertEquals, assertRejects, assertThrows } from "../_harness/assert.ts";
import { SkewClock } from "../../scripts/chaos/skew_clock.ts";
import { delay } from "../../lib/common/delay.ts";

Deno.test("skew clock: at 0.5 a sleep of 100 ms on it takes 200 ms of true time", async () => {
  const clock = new SkewClock();
  clock.rate = 0.5;
  const from = performance.now();
  await clock.sleep(100);
  const took = performance.now() - from;
  assert(took >= 195 && took < 400, `took ${took} ms`);
});

Deno.test("skew clock: a sleep begun at 1 and slowed to 0.5 midway ends when the slow clock reaches its end", async () => {
  const clock = new SkewClock();
  const from = performance.now();
  const start = clock.now();
  const slept = clock.sleep(200);
  // 50 ms at rate 1, then the remaining 150 ms of clock time at half speed: 300 ms.
  await delay(50);
  clock.rate = 0.5;
  await slept;
  const took = performance.now() - from;
  assert(took >= 340 && took < 600, `took ${took} ms (350 expected)`);
  assert(clock.now() - start >= 199, `clock advanced ${clock.now() - start} ms`);
});

Deno.test("skew clock: an abort rejects with its reason and leaves no timer; a bad rate is refused", async () => {
  const clock = new SkewClock();
  const stop = new AbortController();
  const slept = clock.sleep(10_000, stop.signal);
  stop.abort(new Error("stopped"));
  const error = await assertRejects(() => slept, Error);
  assertEquals(error.message, "stopped");
  // A rate change after the abort re-times nothing (the sanitizer would see a leaked timer).
  clock.rate = 2;
  assertEquals(clock.rate, 2);
  for (const rate of [0, -1, Number.NaN, Infinity]) {
    const refused = assertThrows(() => (clock.rate = rate), RangeError);
    assert(refused.message.includes("positive"), `rate ${rate}: ${refused.message}`);
  }
});
