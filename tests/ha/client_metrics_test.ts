import { assertEquals } from "../_harness/assert.ts";
import { sample } from "../_harness/metrics.ts";
import { ClientMetrics } from "../../lib/ha/client_metrics.ts";

const COUNT = "mn_redis_ha_failover_unavailability_seconds_count";

Deno.test("ClientMetrics counts a failover's window once, however many operations it caught", () => {
  const m = new ClientMetrics();
  const t0 = performance.now();
  m.operationAffected(t0 - 5, "a:1"); // in flight when the primary died
  m.primaryLost(t0, "a:1");
  m.operationAffected(t0 - 7, "a:1"); // an earlier one, waiting for the new session
  m.sessionInstalled("b:1"); // operations waited: the window stays open until one succeeds
  assertEquals(sample(m.render("prometheus"), COUNT), 0);
  m.operationSucceeded("b:1");
  assertEquals(sample(m.render("prometheus"), COUNT), 1);
  // A late report from an operation that started inside the closed window opens none.
  m.operationAffected(t0 - 6, "a:1");
  m.operationSucceeded("b:1");
  assertEquals(sample(m.render("prometheus"), COUNT), 1);
});

Deno.test("ClientMetrics: a loss no operation saw closes when the new primary is reached; a blip on the same primary is no failover", () => {
  const m = new ClientMetrics();
  m.primaryLost(performance.now(), "a:1");
  m.sessionInstalled("b:1");
  assertEquals(sample(m.render("prometheus"), COUNT), 1);
  m.primaryLost(performance.now(), "b:1");
  m.operationAffected(performance.now(), "b:1");
  m.sessionInstalled("b:1");
  m.operationSucceeded("b:1");
  assertEquals(sample(m.render("prometheus"), COUNT), 1);
});
