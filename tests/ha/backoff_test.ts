import { assert, assertEquals, assertThrows } from "../_harness/assert.ts";
import { backoffDelayMs, totalBackoffRangeMs } from "../../lib/ha/backoff.ts";

const opts = { backoffMs: 250, maxBackoffMs: 2000 };

Deno.test("backoffDelayMs() doubles the cap from backoffMs up to maxBackoffMs", () => {
  const caps = [1, 2, 3, 4, 5, 6].map((retry) =>
    backoffDelayMs(retry, { ...opts, random: () => 1 })
  );
  assertEquals(caps, [250, 500, 1000, 2000, 2000, 2000]);
});

Deno.test("backoffDelayMs() jitters within the upper half of the cap", () => {
  assertEquals(backoffDelayMs(3, { ...opts, random: () => 0 }), 500);
  assertEquals(backoffDelayMs(3, { ...opts, random: () => 0.5 }), 750);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelayMs(4, opts);
    assert(d >= 1000 && d <= 2000, `delay ${d} outside [1000, 2000]`);
  }
});

Deno.test("backoffDelayMs() survives huge retry numbers without overflow", () => {
  assertEquals(backoffDelayMs(10_000, { ...opts, random: () => 1 }), 2000);
});

Deno.test("backoffDelayMs() rejects a retry below 1 and inverted bounds", () => {
  assertThrows(() => backoffDelayMs(0, opts), RangeError);
  assertThrows(() => backoffDelayMs(1.5, opts), RangeError);
  assertThrows(() => backoffDelayMs(1, { backoffMs: 500, maxBackoffMs: 100 }), RangeError);
});

Deno.test("totalBackoffRangeMs() sums attempts - 1 delays", () => {
  assertEquals(totalBackoffRangeMs(1, opts), { min: 0, max: 0 });
  assertEquals(totalBackoffRangeMs(4, opts), { min: 875, max: 1750 });
});
