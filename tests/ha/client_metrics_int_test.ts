/**
 * The client's own metrics through a real failover: the failover and its
 * unavailability are counted once, the measured unavailability matches what
 * a writer measured itself, and the output passes `promtool check metrics`.
 */

import diagnostics from "node:diagnostics_channel";
import { assert, assertEquals } from "../_harness/assert.ts";
import { sentinelConfig, startCluster, waitFor } from "../_harness/mod.ts";
import { promtoolCheck, sample } from "../_harness/metrics.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { DIAGNOSTICS_CHANNELS } from "../../lib/ha/metric_registry.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";

Deno.test("client metrics through a kill -9 failover: counted once, unavailability within 100 ms of the writer's own, promtool-valid", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 500 });
  await using client = await RedisHaClient.connect(config);
  const published: unknown[] = [];
  const onUnavailability = (message: unknown): void => {
    published.push(message);
  };
  diagnostics.subscribe(DIAGNOSTICS_CHANNELS.unavailability, onUnavailability);
  // The other channels, counted: an application bridges them the same way.
  const seen = new Map<string, number>();
  const counters = Object.entries(DIAGNOSTICS_CHANNELS)
    .filter(([key]) => key !== "unavailability")
    .map(([key, name]) => {
      const listener = (): void => {
        seen.set(key, (seen.get(key) ?? 0) + 1);
      };
      diagnostics.subscribe(name, listener);
      return { name, listener };
    });
  try {
    // One sequential writer; it measures the longest gap between two acknowledged writes.
    let stop = false;
    let acked = 0;
    let lastAck = performance.now();
    let longestGapMs = 0;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await client.durable(["SET", `${config.namespace}:m:${i % 16}`, String(i)], {
            idempotent: true,
          });
          const now = performance.now();
          longestGapMs = Math.max(longestGapMs, now - lastAck);
          lastAck = now;
          acked++;
        } catch {
          // Counted by the client; the writer keeps going.
        }
      }
    })();
    const waitAcked = (n: number): Promise<void> => {
      const target = acked + n;
      return waitFor(
        () =>
          acked >= target
            ? { done: true, value: undefined }
            : { done: false, observed: `${acked} of ${target} writes acknowledged` },
        { what: `${n} more acknowledged writes`, timeoutMs: 30_000, intervalMs: 20 },
      );
    };
    await waitAcked(200);
    const before = client.renderMetrics();
    longestGapMs = 0;
    const old = cluster.nodes[0]!;
    old.kill("SIGKILL");
    await cluster.waitForAgreement({ excluding: old.endpoint, timeoutMs: 30_000 });
    await waitAcked(200);
    stop = true;
    await writer;

    const after = client.renderMetrics();
    const failovers = (text: string): number =>
      ["sentinel_event", "role_mismatch", "probe", "connection"].reduce(
        (n, source) => n + sample(text, `mn_redis_ha_failovers_total{source="${source}"}`),
        0,
      );
    // One kill, one failover; Sentinel now and then adds a spurious second one right after, which
    // the client follows too. Every followed failover is counted once, on the channel as well.
    const followed = seen.get("failover") ?? 0;
    assert(followed === 1 || followed === 2, `${followed} failovers followed`);
    assertEquals(failovers(after) - failovers(before), followed, after);
    const count = "mn_redis_ha_failover_unavailability_seconds_count";
    const windows = sample(after, count) - sample(before, count);
    assert(windows >= 1 && windows <= followed, `${windows} unavailability windows:\n${after}`);
    assertEquals(published.length, windows);
    if (windows === 1) {
      const measuredMs = sample(after, "mn_redis_ha_failover_unavailability_seconds_sum") * 1000;
      assert(
        Math.abs(measuredMs - longestGapMs) <= 100,
        `client measured ${Math.round(measuredMs)} ms, the writer ${Math.round(longestGapMs)} ms`,
      );
    }
    assert((seen.get("write") ?? 0) >= 400, `write channel: ${seen.get("write")}`);
    assert((seen.get("operation") ?? 0) >= 400, `operation channel: ${seen.get("operation")}`);
    assert((seen.get("reconnect") ?? 0) >= 1, "reconnect channel");
    assert(sample(after, 'mn_redis_ha_writes_total{outcome="confirmed"}') >= 400, after);
    assert(after.includes(`mn_redis_ha_primary_info{address="`), after);
    assert(after.includes('db_system_name="redis"'), after);

    const checked = await promtoolCheck(after);
    assertEquals(checked.code, 0, checked.output);
    assertEquals(checked.output.trim(), "", "promtool has no lint complaints");
    const open = client.renderMetrics("openmetrics");
    assert(open.endsWith("# EOF\n"));
    assert(open.includes("# UNIT mn_redis_ha_failover_unavailability_seconds seconds"));
  } finally {
    diagnostics.unsubscribe(DIAGNOSTICS_CHANNELS.unavailability, onUnavailability);
    for (const { name, listener } of counters) diagnostics.unsubscribe(name, listener);
  }
});

Deno.test("client metrics exist from the first connect (known labels at 0, zero buckets, the OpenTelemetry name unprefixed)", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 1 });
  await using client = await RedisHaClient.connect(sentinelConfig(cluster));
  const text = client.renderMetrics();
  for (const outcome of ["confirmed", "under_replicated", "failed", "indeterminate"]) {
    assert(text.includes(`mn_redis_ha_writes_total{outcome="${outcome}"} 0\n`), text);
  }
  for (const source of ["sentinel_event", "role_mismatch", "probe", "connection"]) {
    assert(text.includes(`mn_redis_ha_failovers_total{source="${source}"} 0\n`), text);
  }
  for (const reason of ["connection", "readonly", "probe", "sentinel_event"]) {
    assert(text.includes(`mn_redis_ha_reconnects_total{reason="${reason}"} 0\n`), text);
  }
  assert(text.includes('mn_redis_ha_errors_total{category="connection"} 0\n'), text);
  assert(text.includes('mn_redis_ha_failover_unavailability_seconds_bucket{le="+Inf"} 0\n'), text);
  assert(text.includes("mn_redis_ha_failover_unavailability_seconds_count 0\n"), text);
  // The standard database-client histogram, under its standard name, with the connect in it.
  assertEquals(
    sample(
      text,
      'db_client_operation_duration_seconds_count{db_operation_name="CONNECT",db_system_name="redis"}',
    ),
    1,
  );
  assert(!text.includes("mn_redis_ha_db_client"), text);
  const checked = await promtoolCheck(text);
  assertEquals(checked.code, 0, checked.output);
});

Deno.test("a node-like client (hot writes every 200 ms, no durable write) records a kill -9 failover's unavailability", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster);
  await using node = await RedisHaClient.connect(config);
  let stop = false;
  let beats = 0;
  const heartbeats = (async () => {
    while (!stop) {
      // A heartbeat: a hot write, no WAIT, like nodes.heartbeat and lease renewals.
      await node.command(["SET", `${config.namespace}:heartbeat`, String(beats)]).then(
        () => beats++,
        () => {},
      );
      await new Promise((resolve) => setTimeout(resolve, 200)); // the heartbeat period
    }
  })();
  try {
    const old = cluster.nodes[0]!;
    old.kill("SIGKILL");
    const promoted = formatEndpoint(
      await cluster.waitForAgreement({ excluding: old.endpoint, timeoutMs: 30_000 }),
    );
    const count = "mn_redis_ha_failover_unavailability_seconds_count";
    await waitFor(() => {
      const n = sample(node.renderMetrics(), count);
      return n >= 1 && node.primary?.address === promoted
        ? { done: true, value: undefined }
        : { done: false, observed: `${n} windows, on ${node.primary?.address}` };
    }, { what: "the node to record the failover", timeoutMs: 30_000, intervalMs: 100 });
    const text = node.renderMetrics();
    const windows = sample(text, count);
    const seconds = sample(text, "mn_redis_ha_failover_unavailability_seconds_sum") / windows;
    // Sentinel's down-after is 1 s and a switch takes ~2 s: the window is seconds, not ms.
    assert(seconds > 0.5 && seconds < 15, `${seconds}s over ${windows} windows`);
  } finally {
    stop = true;
    await heartbeats;
  }
});
