/**
 * What one client costs the sentinels, which hundreds of clients multiply:
 * a failover costs each sentinel at most two commands and no new connection;
 * a run of `WAIT` shortfalls asks them at most once a second.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { sample } from "../_harness/metrics.ts";
import { sentinelConfig, startCluster, startWriteLoop, waitFor } from "../_harness/mod.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { WaitError } from "../../lib/common/errors.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";

/** The client's own counts of what it sent to and opened on the sentinels. */
function sentinelTraffic(client: RedisHaClient): { commands: number; connections: number } {
  const text = client.renderMetrics();
  return {
    commands: sample(text, "mn_redis_ha_sentinel_commands_total"),
    connections: sample(text, "mn_redis_ha_sentinel_connections_total"),
  };
}

Deno.test("a kill -9 failover costs each sentinel at most 2 commands from a client, and no new connection", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 500 });
  await using client = await RedisHaClient.connect(config);
  let failovers = 0;
  client.events.on("failover", () => failovers++);
  const loop = startWriteLoop(client, `${config.namespace}:w`, 2);
  try {
    await waitFor(
      () =>
        loop.acked.length >= 50
          ? { done: true, value: undefined }
          : { done: false, observed: `${loop.acked.length} acked` },
      { what: "writes before the kill", timeoutMs: 10_000 },
    );
    const before = sentinelTraffic(client);
    const old = cluster.nodes[0]!;
    old.kill("SIGKILL");
    const promoted = await cluster.waitForAgreement({ excluding: old.endpoint });
    const acked = loop.acked.length;
    await waitFor(
      () =>
        client.primary?.address === formatEndpoint(promoted) && loop.acked.length > acked + 50
          ? { done: true, value: undefined }
          : { done: false, observed: `client on ${client.primary?.address}` },
      { what: "writes on the promoted primary", timeoutMs: 20_000 },
    );
    const after = sentinelTraffic(client);
    // Sentinel may fail over twice (a spurious second switch): the budget is per failover.
    assert(failovers >= 1, "no failover event");
    const perSentinel = (after.commands - before.commands) / 3 / failovers;
    assert(
      perSentinel <= 2,
      `${after.commands - before.commands} commands for ${failovers} failovers`,
    );
    assertEquals(after.connections - before.connections, 0);
  } finally {
    await loop.stop();
  }
});

Deno.test("WAIT shortfalls one after another ask the sentinels at most once a second", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 100 });
  await using client = await RedisHaClient.connect(config);
  await client.durable(["SET", `${config.namespace}:first`, "1"], { idempotent: true });
  const replica = cluster.nodes[1]!;
  const before = sentinelTraffic(client);
  const started = performance.now();
  replica.kill("SIGSTOP");
  let shortfalls = 0;
  try {
    // Every write falls short of its WAIT and makes the client re-check its primary.
    for (let i = 0; shortfalls < 15; i++) {
      await client.durable(["SET", `${config.namespace}:k${i}`, "1"]).catch((error) => {
        if (!(error instanceof WaitError)) throw error;
        shortfalls++;
      });
      assert(performance.now() - started < 20_000, `${shortfalls} shortfalls in 20 s`);
    }
  } finally {
    replica.kill("SIGCONT");
  }
  const seconds = (performance.now() - started) / 1000;
  const commands = sentinelTraffic(client).commands - before.commands;
  // One resolution (a command to each of the 3 sentinels) per second at most, plus the first.
  assert(
    commands <= (Math.ceil(seconds) + 1) * 3,
    `${commands} sentinel commands for ${shortfalls} shortfalls in ${seconds.toFixed(1)} s`,
  );
  assert(commands >= 3, "the first shortfall must ask the sentinels");
});
