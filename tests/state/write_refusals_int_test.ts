/**
 * A primary that refuses writes (at `maxmemory` with `noeviction`, or
 * unable to persist: `MISCONF`) reaches the caller as a typed error naming
 * the node, at once and without reconnecting, and a state operation it
 * refuses writes nothing. Writes work again once memory or disk is back.
 */

import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { openStore, singleConfig, startRedis, tempDir } from "../_harness/mod.ts";
import {
  OutOfMemoryError,
  PersistenceError,
  WriteRefusedError,
} from "../../lib/common/reply_errors.ts";
import { acquireLease } from "../../lib/state/lease.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { replyToNumber, replyToString } from "../../lib/protocol/resp.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import type { RedisProcess } from "../../lib/process/redis_process.ts";
import type { StateStore } from "../../lib/state/state_store.ts";

/** Every key of the node, sorted: what a refused operation must leave as it was. */
async function allKeys(redis: RedisProcess): Promise<string[]> {
  await using conn = await redis.connect();
  const keys = await conn.send(["KEYS", "*"]) as unknown[];
  return keys.map((k) => replyToString(k as string) ?? "").sort();
}

/** Every state write the runtime makes, each expected to fail with `kind` and write nothing. */
async function assertEveryWriteRefused(
  store: StateStore,
  redis: RedisProcess,
  kind: new (reply: string, init: { endpoint: string; command: string }) => Error,
  namespace: string,
): Promise<void> {
  const before = await allKeys(redis);
  const where = formatEndpoint(redis.endpoint);
  const refused = [
    () => store.jobs.create("job-2", { step: 1 }),
    () => store.jobs.update("job-1", { expectedVersion: 1, status: "running", data: { step: 2 } }),
    () => store.events.append("job-1", { id: "e-2", type: "step" }),
    () => store.snapshots.save("job-1", "agent-1", 2, { memory: "x".repeat(1000) }),
    () => store.bundles.put("bundle-2", new Uint8Array(200_000).fill(7)),
    () => store.nodes.register("node-2", { ttlMs: 10_000 }),
    () => store.client.durable(["SET", `${namespace}:plain`, "1"], { idempotent: true }),
  ];
  for (const write of refused) {
    const started = performance.now();
    const error = await assertRejects(write, kind);
    assert(error.message.includes(where), error.message);
    assert(error instanceof WriteRefusedError && error.endpoint === where, error.message);
    // Refused at once: not retried, no reconnect.
    assert(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
  }
  assertEquals(await allKeys(redis), before, "a refused write changed the keys");
}

async function seed(store: StateStore): Promise<void> {
  await store.jobs.create("job-1", { step: 0 });
  await store.events.append("job-1", { id: "e-1", type: "step" });
  await store.snapshots.save("job-1", "agent-1", 1, { memory: "" });
  await store.bundles.put("bundle-1", new Uint8Array(1000).fill(1));
  await store.nodes.register("node-1", { ttlMs: 10_000 });
}

Deno.test("at maxmemory with noeviction: every state write fails with OutOfMemoryError and writes nothing; renewals still run; writes resume once memory is freed", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis, { waitReplicas: 0 });
  await using store = await openStore(config);
  let reconnects = 0;
  store.client.events.on("reconnecting", () => reconnects++);
  await seed(store);
  const lease = await acquireLease(store, "leader", { holder: "a", ttlMs: 10_000 });
  await using conn = await redis.connect();
  const used = Number(
    parseInfo(replyToString(await conn.send(["INFO", "memory"])) ?? "").get("used_memory"),
  );
  await conn.send(["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
  await conn.send(["CONFIG", "SET", "maxmemory", String(used + 2 * 1024 * 1024)]);
  // Fill up to maxmemory, as a runtime's growing state would, then a little past it.
  let filler = 0;
  while (
    await conn.send(["SET", `filler:${filler}`, "x".repeat(64 * 1024)]).then(() => true, (e) => {
      assert(String(e).includes("OOM"), String(e));
      return false;
    })
  ) {
    filler++;
  }
  await conn.send(["CONFIG", "SET", "maxmemory", String(used + 1024 * 1024)]);
  await assertEveryWriteRefused(store, redis, OutOfMemoryError, config.namespace);
  // A renewal changes no memory footprint: it still runs, so the leader keeps its lease.
  await lease.renew();
  assertEquals(await store.nodes.heartbeat("node-1").then(() => "ok"), "ok");
  // Reads are served.
  assertEquals((await store.jobs.get("job-1"))?.data, { step: 0 });
  assertEquals(reconnects, 0);
  // Memory freed: writes work again.
  for (let i = 0; i < filler; i++) await conn.send(["DEL", `filler:${i}`]);
  await store.jobs.create("job-2", { step: 1 });
  await store.events.append("job-1", { id: "e-2", type: "step" });
  assertEquals((await store.events.read("job-1")).map((e) => e.id), ["e-1", "e-2"]);
  await lease.release();
});

Deno.test("a primary that cannot persist (MISCONF): every state write fails with PersistenceError and writes nothing; writes resume once it can save", async () => {
  // `dir` is a protected setting: this test moves it to make a snapshot fail.
  await using redis = await startRedis({ extraConfig: ["enable-protected-configs yes"] });
  const config = singleConfig(redis, { waitReplicas: 0 });
  await using store = await openStore(config);
  await seed(store);
  await using conn = await redis.connect();
  // A snapshot that cannot be written (its directory is gone) stops writes, as a full disk does.
  await using gone = await tempDir("gone-");
  const dir = replyToString(
    ((await conn.send(["CONFIG", "GET", "dir"])) as unknown[])[1] as string,
  )!;
  await conn.send(["CONFIG", "SET", "save", "3600 1"]);
  await conn.send(["CONFIG", "SET", "dir", await Deno.realPath(gone.path)]);
  await Deno.remove(gone.path, { recursive: true });
  await conn.send(["BGSAVE"]);
  const deadline = performance.now() + 10_000;
  while (
    parseInfo(replyToString(await conn.send(["INFO", "persistence"])) ?? "").get(
      "rdb_last_bgsave_status",
    ) !== "err"
  ) {
    assert(performance.now() < deadline, "the snapshot did not fail");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await assertEveryWriteRefused(store, redis, PersistenceError, config.namespace);
  const error = await assertRejects(() => store.jobs.create("job-3", {}), PersistenceError);
  assert(error.message.includes("RDB snapshot"), error.message);
  assertEquals((await store.jobs.get("job-1"))?.data, { step: 0 });
  // The disk is back: a successful save clears the refusal.
  await conn.send(["CONFIG", "SET", "dir", dir]);
  await conn.send(["BGSAVE"]);
  while (
    parseInfo(replyToString(await conn.send(["INFO", "persistence"])) ?? "").get(
      "rdb_last_bgsave_status",
    ) !== "ok"
  ) {
    assert(performance.now() < deadline + 10_000, "the snapshot did not succeed");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await store.jobs.create("job-3", { step: 1 });
  assertEquals(replyToNumber(await conn.send(["EXISTS", `${config.namespace}:job:job-3`])), 1);
});
