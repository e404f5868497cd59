import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import {
  sentinelConfig,
  singleConfig,
  startCluster,
  startRedis,
  waitFor,
} from "../_harness/mod.ts";
import { sample } from "../_harness/metrics.ts";
import { runProcess } from "../_harness/process.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { NoReplicaError } from "../../lib/common/read_errors.ts";
import { ValidationError } from "../../lib/common/state_errors.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import { acquireLease, observeLease } from "../../lib/state/lease.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import type { LocalCluster } from "../../lib/process/local_cluster.ts";
import type { RedisProcess } from "../../lib/process/redis_process.ts";
import { ReplicaReaders } from "../../scripts/chaos/replica_readers.ts";

/** Counter `reads_total{served_by=…}` of a client. */
function reads(client: RedisHaClient, servedBy: string): number {
  return sample(client.renderMetrics(), `mn_redis_ha_reads_total{served_by="${servedBy}"}`);
}

/** The local port of `replica`'s replication connection to its primary. */
async function replicationPort(replica: RedisProcess): Promise<number> {
  await using conn = await replica.connect();
  const list = replyToString(await conn.send(["CLIENT", "LIST", "TYPE", "master"])) ?? "";
  const port = Number(/laddr=\S+:(\d+)/.exec(list)?.[1]);
  assert(Number.isInteger(port) && port > 0, `no replication connection on the replica: ${list}`);
  return port;
}

/** Drops the loopback packets of one TCP connection (by its local port on the replica). */
async function cutConnection(port: number): Promise<AsyncDisposable> {
  const rules = [["--sport", String(port)], ["--dport", String(port)]].map((
    match,
  ) => ["INPUT", "-i", "lo", "-p", "tcp", ...match, "-j", "DROP"]);
  for (const rule of rules) {
    const r = await runProcess("bash", ["-c", `iptables -I ${rule.join(" ")}`]);
    assertEquals(r.code, 0, `iptables: ${r.stderr}`);
  }
  return {
    [Symbol.asyncDispose]: async () => {
      for (const rule of rules) await runProcess("bash", ["-c", `iptables -D ${rule.join(" ")}`]);
    },
  };
}

/** The applied offset the replica reports in `INFO replication`. */
async function replicaOffset(replica: RedisProcess): Promise<number> {
  await using conn = await replica.connect();
  const info = parseInfo(replyToString(await conn.send(["INFO", "replication"])) ?? "");
  return Number(info.get("slave_repl_offset"));
}

/** The cluster's replicas (not the primary the sentinels agree on). */
async function replicasOf(cluster: LocalCluster): Promise<RedisProcess[]> {
  const primary = formatEndpoint(await cluster.waitForAgreement());
  return cluster.nodes.filter((n) => !n.exited && formatEndpoint(n.endpoint) !== primary);
}

Deno.test("replica reads: a client reads its own writes from replicas, hot and durable", async () => {
  await using cluster = await startCluster({ replicas: 2 });
  const config = sentinelConfig(cluster, {
    readFrom: "replica-preferred",
    readMaxLagMs: 200,
    waitReplicas: 1,
  });
  await using client = await RedisHaClient.connect(config);
  const key = `${config.namespace}:ryw`;
  const served = new Set<string>();
  for (let i = 1; i <= 300; i++) {
    // Alternate hot and durable writes: each read right after must show it.
    if (i % 2 === 0) await client.command(["SET", key, String(i)]);
    else await client.durable(["SET", key, String(i)], { idempotent: true });
    const read = await client.readServed(["GET", key]);
    assertEquals(read.reply, String(i), `read ${i} from ${read.servedBy} ${read.node}`);
    if (read.servedBy === "replica") served.add(read.node);
  }
  const primary = client.primary!.address;
  assert(!served.has(primary), "the primary served a read as a replica");
  assertEquals(served.size, 2, `reads spread over both replicas, got ${[...served]}`);
  assert(reads(client, "replica") >= 250, `replica reads: ${reads(client, "replica")} of 300`);
  // Per-call override: the primary.
  const forced = await client.readServed(["GET", key], { readFrom: "primary" });
  assertEquals([forced.servedBy, forced.node], ["primary", primary]);
  // A write is never a read.
  const write = await assertRejects(() => client.read(["SET", key, "x"]), ValidationError);
  assert(write.message.includes("not a read-only"), write.message);
});

Deno.test("replica reads: the state API's reads honour the policy; writes and leases stay on the primary", async () => {
  await using cluster = await startCluster({ replicas: 1 });
  const config = sentinelConfig(cluster, { readFrom: "replica", waitReplicas: 1 });
  await using store = await StateStore.connect(config);
  // Writes and leases with readFrom=replica: all on the primary (a replica would refuse them).
  const job = await store.jobs.create("job-1", { step: 1 });
  await store.jobs.update("job-1", { expectedVersion: job.version, status: "running" });
  await store.events.append("job-1", { id: "e1", type: "started" });
  await store.snapshots.save("job-1", "agent-1", 1, { x: 1 });
  await store.nodes.register("node-1", { ttlMs: 5000 });
  await store.bundles.put("b1", new Uint8Array(3000).fill(7));
  const lease = await acquireLease(store, "leader", { holder: "node-1", ttlMs: 5000 });
  const before = reads(store.client, "replica");
  assertEquals((await store.jobs.get("job-1"))?.status, "running");
  assertEquals((await store.jobs.list()).jobs.map((j) => j.id), ["job-1"]);
  assertEquals((await store.events.read("job-1")).map((e) => e.id), ["e1"]);
  assertEquals((await store.snapshots.load("job-1", "agent-1"))?.seq, 1);
  assertEquals((await store.nodes.list()).map((n) => n.id), ["node-1"]);
  assertEquals((await store.bundles.info("b1"))?.size, 3000);
  assertEquals((await store.bundles.get("b1"))?.bytes.length, 3000);
  assertEquals((await observeLease(store, "leader"))?.token, lease.token);
  // get, list (page + job), read, load, list, info, get (info + chunk), observe.
  assertEquals(reads(store.client, "replica") - before, 10);
  assertEquals(reads(store.client, "primary") + reads(store.client, "primary_fallback"), 0);
  // Per-call override.
  await store.jobs.get("job-1", { readFrom: "primary" });
  assertEquals(reads(store.client, "primary"), 1);
  await lease.release();
});

Deno.test("replica reads: `replica` with no replica to read is a typed error saying why", async () => {
  await using redis = await startRedis();
  await using single = await RedisHaClient.connect(singleConfig(redis, { readFrom: "replica" }));
  const none = await assertRejects(() => single.read(["GET", "k"]), NoReplicaError);
  assert(none.message.includes("single mode"), none.message);
  assertEquals(none.reason, "none-listed");
  assertEquals(await single.read(["GET", "k"], { readFrom: "replica-preferred" }), null);

  await using cluster = await startCluster({ replicas: 1 });
  await using client = await RedisHaClient.connect(
    sentinelConfig(cluster, { readFrom: "replica" }),
  );
  assertEquals(await client.read(["GET", "k"]), null);
  const [replica] = await replicasOf(cluster);
  replica!.kill("SIGSTOP");
  try {
    const started = performance.now();
    const down = await assertRejects(() => client.read(["GET", "k"]), NoReplicaError);
    const tookMs = performance.now() - started;
    assertEquals(down.reason, "down");
    assert(down.message.includes(formatEndpoint(replica!.endpoint)), down.message);
    // The replica timeout (250 ms), not a hang.
    assert(tookMs < 1500, `the paused replica held the read ${tookMs} ms`);
    // replica-preferred: the primary serves, within the same bound.
    const t = performance.now();
    const served = await client.readServed(["GET", "k"], { readFrom: "replica-preferred" });
    assertEquals(served.servedBy, "primary");
    assert(served.fallback !== undefined);
    assert(performance.now() - t < 1500, `fallback took ${performance.now() - t} ms`);
  } finally {
    replica!.kill("SIGCONT");
  }
  const lag = await assertRejects(
    () => client.read(["GET", "k"], { maxLagMs: -1 }),
    ValidationError,
  );
  assert(lag.message.includes("maxLagMs"), lag.message);
});

Deno.test("replica reads: a replica cut from its primary is not read beyond the bound", async () => {
  await using cluster = await startCluster({ replicas: 1 });
  const config = sentinelConfig(cluster, { readFrom: "replica", readMaxLagMs: 100 });
  await using writer = await RedisHaClient.connect(config);
  await using reader = await RedisHaClient.connect(config);
  const key = `${config.namespace}:cut`;
  await writer.command(["SET", key, "1"]);
  await waitFor(async () => {
    const v = await reader.read(["GET", key]).catch(() => null);
    return v === "1" ? { done: true, value: undefined } : { done: false, observed: String(v) };
  }, { what: "the replica to serve the first version", timeoutMs: 5000 });
  const [replica] = await replicasOf(cluster);
  const port = await replicationPort(replica!);
  {
    await using _cut = await cutConnection(port);
    const stuckAt = await replicaOffset(replica!);
    await writer.command(["SET", key, "2"]);
    // Reachable, link still "connected", but its offset no longer moves: never served past the bound.
    await waitFor(async () => {
      const v = await reader.read(["GET", key]).then(
        (v) => `served ${v}`,
        (e) => e instanceof NoReplicaError ? e.reason : `${e}`,
      );
      return v === "beyond-bound" ? { done: true, value: undefined } : { done: false, observed: v };
    }, { what: "the cut replica to be refused", timeoutMs: 5000 });
    const refused = await assertRejects(() => reader.read(["GET", key]), NoReplicaError);
    assert(refused.message.includes("lagging"), refused.message);
    assertEquals(refused.reason, "beyond-bound");
    assertEquals(await replicaOffset(replica!), stuckAt, "the link was not cut");
    assertEquals(await reader.read(["GET", key], { readFrom: "replica-preferred" }), "2");
  }
  await waitFor(async () => {
    const v = await reader.read(["GET", key]).catch(() => null);
    return v === "2" ? { done: true, value: undefined } : { done: false, observed: String(v) };
  }, { what: "the replica to serve again once its link is back", timeoutMs: 10_000 });
  assert(
    sample(reader.renderMetrics(), 'mn_redis_ha_replica_read_skips_total{reason="lagging"}') > 0,
  );
});

Deno.test("replica reads: the checker finds no stale read and no lost own write through a paused replica, a cut link, a restart and a kill -9 failover", async () => {
  await using cluster = await startCluster({ replicas: 2 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 500 });
  const readers = await ReplicaReaders.start(config, { writers: 2, maxLagMs: 100 });
  const served = async (what: string, atLeast: number): Promise<void> => {
    const from = readers.replicaReads;
    await waitFor(() =>
      Promise.resolve(
        readers.replicaReads - from >= atLeast
          ? { done: true, value: undefined }
          : { done: false, observed: `${readers.replicaReads - from} replica reads` },
      ), { what, timeoutMs: 20_000 });
  };
  try {
    await served("replica reads at the start", 200);
    const [a, b] = await replicasOf(cluster);
    // A paused replica: skipped after the replica timeout; the other one or the primary serves.
    b!.kill("SIGSTOP");
    await served("replica reads with one replica paused", 100);
    b!.kill("SIGCONT");
    // A replica cut from the primary but reachable by the clients.
    {
      await using _cut = await cutConnection(await replicationPort(a!));
      await served("replica reads with one replication link cut", 100);
    }
    // A replica restarted.
    b!.kill("SIGKILL");
    await b!.waitExit();
    const primary = await cluster.waitForAgreement();
    await cluster.restartAsReplica(b!.endpoint, primary);
    await served("replica reads after a replica restart", 100);
    // kill -9 of the primary: a failover.
    cluster.node(primary).kill("SIGKILL");
    await cluster.waitForAgreement({ excluding: primary, timeoutMs: 60_000 });
    await served("replica reads after the failover", 100);
  } finally {
    await readers.stop();
  }
  const verdict = readers.verdict();
  assertEquals(
    { stale: verdict.stale, readYourWrites: verdict.readYourWrites },
    { stale: 0, readYourWrites: 0 },
    JSON.stringify(verdict.examples.slice(0, 3)),
  );
  assert(verdict.byReplica > 600, `replica reads ${verdict.byReplica} of ${verdict.reads}`);
});

Deno.test("replica reads: a replica added later is found (+slave) and read; one that leaves is read no more", async () => {
  await using cluster = await startCluster({ replicas: 1 });
  const config = sentinelConfig(cluster, { readFrom: "replica" });
  await using client = await RedisHaClient.connect(config);
  const [first] = await replicasOf(cluster);
  assertEquals((await client.readServed(["GET", "k"])).node, formatEndpoint(first!.endpoint));
  const primary = await cluster.waitForAgreement();
  const added = await cluster.addReplica(primary);
  const addedAt = formatEndpoint(added.endpoint);
  await waitFor(async () => {
    const nodes = new Set<string>();
    for (let i = 0; i < 6; i++) nodes.add((await client.readServed(["GET", "k"])).node);
    return nodes.has(addedAt)
      ? { done: true, value: undefined }
      : { done: false, observed: [...nodes].join(",") };
  }, { what: "reads from the added replica", timeoutMs: 20_000 });
  // The first replica leaves: stopped, and forgotten by every sentinel.
  const firstAt = formatEndpoint(first!.endpoint);
  await first!.stop();
  for (const s of cluster.sentinels) {
    await using conn = await s.connect();
    await conn.send(["SENTINEL", "RESET", cluster.masterName]);
  }
  await waitFor(async () => {
    const nodes = new Set<string>();
    for (let i = 0; i < 6; i++) nodes.add((await client.readServed(["GET", "k"])).node);
    return !nodes.has(firstAt) && nodes.has(addedAt)
      ? { done: true, value: undefined }
      : { done: false, observed: [...nodes].join(",") };
  }, { what: "reads only from the remaining replica", timeoutMs: 30_000 });
});
