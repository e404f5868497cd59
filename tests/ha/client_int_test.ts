import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import {
  assertAllPresent,
  sentinelConfig,
  singleConfig,
  startCluster,
  startRedis,
  startWriteLoop,
  waitFor,
} from "../_harness/mod.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { configFromOptions } from "../../lib/ha/config.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import {
  AuthError,
  OutcomeUnknownError,
  RetriesExhaustedError,
  WaitError,
} from "../../lib/common/errors.ts";
import { totalBackoffRangeMs } from "../../lib/ha/backoff.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { replyToNumber, replyToString } from "../../lib/protocol/resp.ts";
import { Secret } from "../../lib/common/secret.ts";
import { parseInfo } from "../../lib/protocol/info.ts";

/** Waits until `loop` acknowledged at least `count` more writes than it had. */
function waitForProgress(loop: { acked: string[] }, count: number, what: string): Promise<void> {
  const target = loop.acked.length + count;
  return waitFor(
    () =>
      loop.acked.length >= target
        ? { done: true, value: undefined }
        : { done: false, observed: `${loop.acked.length} of ${target} writes acknowledged` },
    { what, timeoutMs: 30_000 },
  );
}

Deno.test("RedisHaClient in single mode authenticates an ACL user with a password", async () => {
  await using redis = await startRedis({
    password: new Secret("default-pw"),
    aclUser: { name: "mn", password: new Secret("mn-pw") },
  });
  const config = singleConfig(redis, { username: "mn", password: "mn-pw" });
  await using client = await RedisHaClient.connect(config);
  await client.durable(["SET", `${config.namespace}:k`, "v"], { idempotent: true });
  assertEquals(replyToString(await client.command(["GET", `${config.namespace}:k`])), "v");
  assertEquals(replyToString(await client.command(["ACL", "WHOAMI"])), "mn");
  assertEquals(client.primary?.address, formatEndpoint(redis.endpoint));
});

Deno.test("RedisHaClient fails fast on a wrong password, with no retry storm", async () => {
  await using redis = await startRedis({ password: new Secret("right") });
  const config = singleConfig(redis, { password: "wrong-secret", reconnectAttempts: 10 });
  const started = performance.now();
  const error = await assertRejects(() => RedisHaClient.connect(config), AuthError);
  assert(performance.now() - started < 1000, "an auth failure must not be retried");
  assert(!error.message.includes("wrong-secret"));
  assert(error.message.includes("MN_REDIS_PASSWORD"));
  await using conn = await redis.connect();
  const stats = parseInfo(replyToString(await conn.send(["INFO", "stats"])) ?? "");
  // One AUTH failure per client connection (the client opens two), not ten attempts' worth.
  assert(Number(stats.get("total_connections_received")) <= 4);
});

Deno.test("RedisHaClient gives up after the configured attempts, in about the configured backoff", async () => {
  const config = configFromOptions({
    url: `redis://127.0.0.1:${freePort()}`,
    reconnectAttempts: 4,
    reconnectBackoffMs: 100,
    reconnectMaxBackoffMs: 400,
  });
  const range = totalBackoffRangeMs(4, { backoffMs: 100, maxBackoffMs: 400 });
  const started = performance.now();
  const error = await assertRejects(() => RedisHaClient.connect(config), RetriesExhaustedError);
  const elapsed = performance.now() - started;
  assertEquals(error.attempts, 4);
  assertEquals(error.lastPrimary, formatEndpoint(config.url));
  assert(error.message.includes("after 4 attempts"));
  assert(
    elapsed >= range.min && elapsed <= range.max + 500,
    `took ${elapsed}ms, expected ${range.min}-${range.max}`,
  );
});

Deno.test("RedisHaClient raises WaitError with acked=0 when replicas cannot acknowledge", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  const config = singleConfig(cluster.nodes[0]!, { waitReplicas: 1, waitTimeoutMs: 1000 });
  await using client = await RedisHaClient.connect(config);
  await client.durable(["SET", `${config.namespace}:before`, "1"]);
  cluster.nodes[1]!.kill("SIGSTOP");
  const error = await assertRejects(
    () => client.durable(["SET", `${config.namespace}:unconfirmed`, "1"], { idempotent: true }),
    WaitError,
  );
  assertEquals(error.acked, 0);
  assertEquals(error.required, 1);
  assert(error.message.includes("0 of 1 replicas acknowledged within 1000ms"));
  // The write is on the primary, just not confirmed.
  assertEquals(
    replyToString(await client.command(["GET", `${config.namespace}:unconfirmed`])),
    "1",
  );
  cluster.nodes[1]!.kill("SIGCONT");
});

Deno.test("RedisHaClient group-commits concurrent durable writes under one WAIT per socket write, hot commands never wait", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  const config = singleConfig(cluster.nodes[0]!, { waitReplicas: 1, waitTimeoutMs: 1000 });
  await using client = await RedisHaClient.connect(config);
  await client.command(["CONFIG", "RESETSTAT"]);
  await Promise.all(
    Array.from(
      { length: 50 },
      (_, i) => client.durable(["SET", `${config.namespace}:${i}`, i], { idempotent: true }),
    ),
  );
  const stats = replyToString(await client.command(["INFO", "commandstats"])) ?? "";
  const waits = Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  // One WAIT per socket write of at most 16 commands: 4 for 50 writes.
  assert(waits >= 1 && waits <= 4, `50 concurrent durable writes issued ${waits} WAITs`);

  // A durable write stuck in WAIT (replica stopped) must not delay hot commands.
  cluster.nodes[1]!.kill("SIGSTOP");
  const stuck = client.durable(["SET", `${config.namespace}:stuck`, "1"], { idempotent: true })
    .catch((e) => e);
  const started = performance.now();
  await client.command(["SET", `${config.namespace}:lease`, "holder", "PX", 5000]);
  const hotMs = performance.now() - started;
  assert(hotMs < 300, `hot write took ${hotMs}ms behind a WAIT`);
  assert((await stuck) instanceof WaitError);
  cluster.nodes[1]!.kill("SIGCONT");
});

Deno.test("RedisHaClient reports an unknown outcome instead of resending a non-idempotent write", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis, {
    reconnectAttempts: 3,
    reconnectBackoffMs: 50,
    reconnectMaxBackoffMs: 100,
  });
  await using client = await RedisHaClient.connect(config, {
    probeIntervalMs: 100,
    probeTimeoutMs: 200,
  });
  const key = `${config.namespace}:counter`;
  redis.kill("SIGSTOP");
  // The probe notices the hang and drops the connection while INCR is in flight.
  const error = await assertRejects(() => client.durable(["INCR", key]), OutcomeUnknownError);
  assert(error.message.includes("not marked idempotent"));
  redis.kill("SIGCONT");
  await using conn = await redis.connect();
  const value = Number(replyToString(await conn.send(["GET", key])) ?? "0");
  assert(value <= 1, `INCR ran ${value} times`);
});

Deno.test("RedisHaClient survives kill -9 of the primary under WAIT 1 without losing an acknowledged write", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 1000 });
  await using client = await RedisHaClient.connect(config);
  const failovers: string[] = [];
  client.events.on("failover", ({ to }) => failovers.push(to));
  const sentinelEvents: string[] = [];
  client.events.on(
    "sentinel-event",
    ({ channel, sentinel }) => sentinelEvents.push(`${channel}@${sentinel}`),
  );
  const loop = startWriteLoop(client, `${config.namespace}:w`);
  try {
    await waitForProgress(loop, 100, "writes before the kill");
    const old = cluster.nodes[0];
    old!.kill("SIGKILL");
    const promoted = await cluster.waitForAgreement({ excluding: old!.endpoint });
    await waitFor(
      () =>
        client.primary?.address === formatEndpoint(promoted)
          ? { done: true, value: undefined }
          : { done: false, observed: `client on ${client.primary?.address}` },
      { what: "the client to reach the promoted primary", timeoutMs: 20_000 },
    );
    await waitForProgress(loop, 100, "writes after the failover");
    // Tolerate Sentinel's occasional second failover: check against the primary all agree on now.
    await loop.stop();
    const final = await cluster.waitForAgreement();
    // A WaitError is an honest "not confirmed" (e.g. during a second, spurious failover); any
    // other error means the client failed to ride through the failover.
    const unexpected = loop.errors.filter((e) => !(e instanceof WaitError));
    assertEquals(unexpected.length, 0, `write errors: ${unexpected.map(String).join("; ")}`);
    await assertAllPresent(cluster.node(final), loop.acked);
    assert(failovers.includes(formatEndpoint(promoted)));
    // The switch was announced over pub/sub by at least two sentinels the client subscribed to.
    const announcers = new Set(sentinelEvents.filter((e) => e.startsWith("+switch-master@")));
    assert(announcers.size >= 2, `+switch-master seen from: ${[...announcers].join(", ")}`);
  } finally {
    await loop.stop();
  }
});

Deno.test("RedisHaClient detects a hung primary (SIGSTOP) with its probe and moves on for good", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 1000 });
  await using client = await RedisHaClient.connect(config, {
    probeIntervalMs: 200,
    probeTimeoutMs: 500,
  });
  const probeFailures: string[] = [];
  client.events.on("probe-failed", ({ primary }) => probeFailures.push(primary));
  const connectedTo: string[] = [];
  client.events.on("failover", ({ to }) => connectedTo.push(to));
  const loop = startWriteLoop(client, `${config.namespace}:w`);
  const hung = cluster.nodes[0];
  try {
    await waitForProgress(loop, 100, "writes before the hang");
    hung!.kill("SIGSTOP");
    await waitFor(
      () =>
        probeFailures.includes(formatEndpoint(hung!.endpoint))
          ? { done: true, value: undefined }
          : { done: false, observed: `probe failures: ${probeFailures.join(",") || "none"}` },
      { what: "the probe to detect the hung primary", timeoutMs: 5_000 },
    );
    const promoted = await cluster.waitForAgreement({ excluding: hung!.endpoint });
    await waitForProgress(loop, 100, "writes on the promoted primary");
    hung!.kill("SIGCONT");
    // Sentinel turns the old primary into a replica; writes must never go back to it.
    await waitFor(async () => {
      await using conn = await hung!.connect();
      const role = await conn.send(["ROLE"]);
      const name = Array.isArray(role) ? replyToString(role[0]) : null;
      return name === "slave"
        ? { done: true, value: undefined }
        : { done: false, observed: `role ${name}` };
    }, { what: "the resumed old primary to be demoted", timeoutMs: 30_000 });
    await waitForProgress(loop, 100, "writes after the old primary resumed");
    await loop.stop();
    const final = await cluster.waitForAgreement();
    assert(
      !connectedTo.includes(formatEndpoint(hung!.endpoint)),
      `client went back: ${connectedTo}`,
    );
    assertEquals(formatEndpoint(final), formatEndpoint(promoted));
    const unexpected = loop.errors.filter((e) => !(e instanceof WaitError));
    assertEquals(unexpected.length, 0, `write errors: ${unexpected.map(String).join("; ")}`);
    await assertAllPresent(cluster.node(final), loop.acked);
  } finally {
    hung!.kill("SIGCONT");
    await loop.stop();
  }
});

Deno.test("RedisHaClient handles READONLY from a primary demoted in place by re-resolving", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster);
  await using client = await RedisHaClient.connect(config);
  const retried: string[] = [];
  client.events.on("reconnecting", ({ error }) => retried.push(error));
  const loop = startWriteLoop(client, `${config.namespace}:w`);
  const [oldPrimary, next, other] = cluster.nodes;
  try {
    await waitForProgress(loop, 100, "writes before the demotion");
    // An operator's manual switch, done safely: pause writes, let the replica catch up, swap roles.
    await using p = await oldPrimary!.connect();
    await p.send(["CLIENT", "PAUSE", 10_000, "WRITE"]);
    const offset = parseInfo(replyToString(await p.send(["INFO", "replication"])) ?? "").get(
      "master_repl_offset",
    );
    await using n = await next!.connect();
    await waitFor(async () => {
      const seen = parseInfo(replyToString(await n.send(["INFO", "replication"])) ?? "").get(
        "slave_repl_offset",
      );
      return seen === offset
        ? { done: true, value: undefined }
        : { done: false, observed: `${seen} of ${offset}` };
    }, { what: "the replica to catch up", timeoutMs: 5_000 });
    await n.send(["REPLICAOF", "NO", "ONE"]);
    await p.send(["REPLICAOF", next!.endpoint.host, next!.endpoint.port]);
    await p.send(["CLIENT", "UNPAUSE"]);
    await using o = await other!.connect();
    await o.send(["REPLICAOF", next!.endpoint.host, next!.endpoint.port]);
    for (const s of cluster.sentinels) {
      await using conn = await s.connect();
      await conn.send(["SENTINEL", "REMOVE", cluster.masterName]);
      await conn.send([
        "SENTINEL",
        "MONITOR",
        cluster.masterName,
        next!.endpoint.host,
        next!.endpoint.port,
        2,
      ]);
      await conn.send(["SENTINEL", "SET", cluster.masterName, "down-after-milliseconds", 1000]);
    }
    await waitFor(
      () =>
        client.primary?.address === formatEndpoint(next!.endpoint)
          ? { done: true, value: undefined }
          : { done: false, observed: `client on ${client.primary?.address}` },
      { what: "the client to follow the new primary", timeoutMs: 20_000 },
    );
    await waitForProgress(loop, 100, "writes on the new primary");
    await loop.stop();
    assertEquals(loop.errors.length, 0, `write errors: ${loop.errors.map(String).join("; ")}`);
    assert(retried.some((e) => e.includes("READONLY")), `retries: ${retried.join("; ")}`);
    await assertAllPresent(next!, loop.acked);
    await using check = await oldPrimary!.connect();
    const role = await check.send(["ROLE"]);
    assertEquals(Array.isArray(role) ? replyToString(role[0]) : null, "slave");
    assertEquals(replyToNumber(await check.send(["DBSIZE"])) >= loop.acked.length, true);
  } finally {
    await loop.stop();
  }
});

Deno.test("RedisHaClient returns bulk replies as strings, or as bytes with { bytes: true }", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis);
  await using client = await RedisHaClient.connect(config);
  const key = `${config.namespace}:k`;
  await client.durable(["SET", key, "{}"], { idempotent: true });
  assertEquals(await client.command(["GET", key]), "{}");
  assertEquals(await client.command(["MGET", key, `${key}:missing`]), ["{}", null]);
  assertEquals(await client.command(["GET", key], { bytes: true }), new TextEncoder().encode("{}"));
  const binary = new Uint8Array([0xff, 0x00, 0xfe]);
  await client.durable(["SET", `${key}:bin`, binary], { idempotent: true });
  assertEquals(await client.command(["GET", `${key}:bin`], { bytes: true }), binary);
  assertEquals(await client.durable(["GETSET", key, "x"], { idempotent: true }), "{}");
  assertEquals(await client.command(["INCR", `${key}:n`]), 1, "integers stay numbers");
});
