import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { openStore, singleConfig, startCluster, startRedis, waitFor } from "../_harness/mod.ts";
import { WaitError } from "../../lib/common/errors.ts";
import {
  InvalidTransitionError,
  NotFoundError,
  ValidationError,
} from "../../lib/common/state_errors.ts";

Deno.test("NodeRegistry lists nodes up, then down when heartbeats stop, then left after leave", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await store.nodes.register("box-1", { ttlMs: 300, meta: { ip: "192.168.4.29" } });
  await store.nodes.register("box-2", { ttlMs: 60_000 });
  let nodes = await store.nodes.list();
  assertEquals(nodes.map((n) => [n.id, n.status]), [["box-1", "up"], ["box-2", "up"]]);
  assertEquals(nodes[0]!.meta, { ip: "192.168.4.29" });
  // box-1 stops heartbeating: it shows as down, not dropped.
  await waitFor(async () => {
    const n = (await store.nodes.list()).find((x) => x.id === "box-1")!;
    return n.status === "down"
      ? { done: true, value: n }
      : { done: false, observed: `${n.status}, age ${n.lastSeenAgeMs}ms` };
  }, { what: "box-1 to be listed down", timeoutMs: 5000 });
  await store.nodes.heartbeat("box-1");
  nodes = await store.nodes.list();
  assertEquals(nodes.find((n) => n.id === "box-1")?.status, "up");
  assert(nodes.find((n) => n.id === "box-1")!.lastSeenAgeMs < 300);
  await store.nodes.leave("box-2");
  assertEquals((await store.nodes.list()).find((n) => n.id === "box-2")?.status, "left");
  await assertRejects(() => store.nodes.heartbeat("box-2"), InvalidTransitionError);
  await store.nodes.register("box-2", { ttlMs: 60_000 });
  assertEquals(
    (await store.nodes.list()).find((n) => n.id === "box-2")?.status,
    "up",
    "re-registering brings it back",
  );
});

Deno.test("NodeRegistry rejects bad input", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await assertRejects(() => store.nodes.heartbeat("never-registered"), NotFoundError);
  await assertRejects(() => store.nodes.leave("never-registered"), NotFoundError);
  await assertRejects(() => store.nodes.register("n", { ttlMs: 5 }), ValidationError);
  await assertRejects(() => store.nodes.register("bad id", { ttlMs: 1000 }), ValidationError);
});

Deno.test("heartbeats are hot writes: a node stays up while its replica is paused; registration is durable", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  await using admin = await cluster.nodes[0]!.connect();
  await admin.send(["WAIT", 1, 10_000]); // the replica is attached and caught up
  // A write that waited for the paused replica would take the whole WAIT timeout (2 s).
  await using store = await openStore(
    singleConfig(cluster.nodes[0]!, { waitReplicas: 1, waitTimeoutMs: 2_000 }),
  );
  await store.nodes.register("n1", { ttlMs: 10_000 });
  cluster.nodes[1]!.kill("SIGSTOP");
  try {
    const started = performance.now();
    await store.nodes.heartbeat("n1");
    const took = performance.now() - started;
    assert(
      took < 1_000,
      `a heartbeat waited ${Math.round(took)}ms: it must not wait for the replica`,
    );
    await assertRejects(() => store.nodes.register("n2", { ttlMs: 10_000 }), WaitError);
  } finally {
    cluster.nodes[1]!.kill("SIGCONT");
  }
  assertEquals((await store.nodes.list()).find((n) => n.id === "n1")?.status, "up");
});
