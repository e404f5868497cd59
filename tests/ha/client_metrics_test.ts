import { assertEquals } from "../_harness/assert.ts";
import { sample } from "../_harness/metrics.ts";
import diagnostics from "node:diagnostics_channel";
import { ClientMetrics } from "../../lib/ha/client_metrics.ts";
import { DIAGNOSTICS_CHANNELS } from "../../lib/ha/metric_registry.ts";

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

Deno.test("ClientMetrics records operations and durable writes in their labelled series, and publishes only to subscribers", () => {
  const m = new ClientMetrics();
  const seen: unknown[] = [];
  const onOperation = (message: unknown) => seen.push(message);
  m.operation("SET", 0.25, true);
  m.operation("SET", 2, true);
  m.operation("SET", 3, false);
  m.operation("EVALSHA", 0.01, true);
  m.write("confirmed");
  m.write("confirmed");
  m.write("indeterminate");
  diagnostics.subscribe(DIAGNOSTICS_CHANNELS.operation, onOperation);
  try {
    m.operation("GET", 0.001, true);
  } finally {
    diagnostics.unsubscribe(DIAGNOSTICS_CHANNELS.operation, onOperation);
  }
  m.operation("GET", 0.001, true);
  const text = m.render("prometheus");
  const set = 'db_operation_name="SET",db_system_name="redis"';
  assertEquals(sample(text, `db_client_operation_duration_seconds_count{${set}}`), 2);
  assertEquals(sample(text, `db_client_operation_duration_seconds_sum{${set}}`), 2.25);
  assertEquals(sample(text, `db_client_operation_duration_seconds_bucket{${set},le="0.5"}`), 1);
  assertEquals(sample(text, `db_client_operation_duration_seconds_bucket{${set},le="+Inf"}`), 2);
  assertEquals(
    sample(text, `db_client_operation_duration_seconds_count{${set},error_type="error"}`),
    1,
  );
  assertEquals(
    sample(
      text,
      'db_client_operation_duration_seconds_count{db_operation_name="GET",db_system_name="redis"}',
    ),
    2,
  );
  assertEquals(sample(text, 'mn_redis_ha_writes_total{outcome="confirmed"}'), 2);
  assertEquals(sample(text, 'mn_redis_ha_writes_total{outcome="indeterminate"}'), 1);
  assertEquals(sample(text, 'mn_redis_ha_writes_total{outcome="failed"}'), 0);
  assertEquals(seen, [{ operation: "GET", durationMs: 1, ok: true }]);
});
