import { assertEquals, assertThrows } from "../_harness/assert.ts";
import { ValidationError } from "../../lib/common/state_errors.ts";
import { keepAliveTiming } from "../../lib/state/lease.ts";

Deno.test("keepAliveTiming() uses the Kubernetes-style defaults: deadline 2/3 TTL, period 1/4 TTL", () => {
  assertEquals(keepAliveTiming(12_000, {}), { periodMs: 3000, deadlineMs: 8000 });
});

Deno.test("keepAliveTiming() refuses a deadline the server could beat, and a period past the deadline", () => {
  const late = assertThrows(
    () => keepAliveTiming(1000, { renewDeadlineMs: 950, driftMs: 100 }),
    ValidationError,
  );
  assertEquals(late.field, "keepAlive.renewDeadlineMs");
  const slow = assertThrows(
    () => keepAliveTiming(1000, { renewDeadlineMs: 500, retryPeriodMs: 600 }),
    ValidationError,
  );
  assertEquals(slow.field, "keepAlive.retryPeriodMs");
  assertEquals(keepAliveTiming(1000, { renewDeadlineMs: 900, driftMs: 100, retryPeriodMs: 200 }), {
    periodMs: 200,
    deadlineMs: 900,
  });
});
