import { assert, assertEquals } from "../_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "../_harness/mod.ts";
import { AbortedError } from "../../lib/common/errors.ts";
import { acquireLease, observeLease } from "../../lib/state/lease.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import { replyToString } from "../../lib/protocol/resp.ts";

Deno.test("StateStore namespaces never see each other's records", async () => {
  await using redis = await startRedis();
  await using a = await openStore(singleConfig(redis, { namespace: "tenant_a" }));
  await using b = await openStore(singleConfig(redis, { namespace: "tenant_b" }));
  await a.jobs.create("job-1", { owner: "a" });
  await b.jobs.create("job-1", { owner: "b" });
  assertEquals((await a.jobs.get("job-1"))!.data, { owner: "a" });
  assertEquals((await b.jobs.get("job-1"))!.data, { owner: "b" });
  await a.events.append("job-1", { id: "e1", type: "t" });
  assertEquals(await b.events.read("job-1"), []);
  await a.nodes.register("n1", { ttlMs: 10_000 });
  assertEquals(await b.nodes.list(), []);
  await a.bundles.put("bundle", new Uint8Array([1, 2, 3]));
  assertEquals(await b.bundles.get("bundle"), null);
  await using lease = await acquireLease(a, "leader", { holder: "a", ttlMs: 10_000 });
  assertEquals((await observeLease(a, "leader"))?.token, lease.token);
  assertEquals(await observeLease(b, "leader"), null);
  assertEquals((await a.jobs.list()).jobs.length, 1);
  const keys = (await a.client.command(["KEYS", "*"]) as Uint8Array[]).map((k) =>
    replyToString(k) ?? ""
  );
  for (const key of keys) {
    assertEquals(key.startsWith("tenant_a:") || key.startsWith("tenant_b:"), true, key);
  }
});

Deno.test("StateStore wraps a caller's client without closing it", async () => {
  await using redis = await startRedis();
  await using client = await RedisHaClient.connect(singleConfig(redis));
  {
    await using store = new StateStore(client);
    await store.jobs.create("j", {});
  }
  assertEquals(replyToString(await client.command(["PING"])), "PONG");
});

Deno.test("StateStore operations take a signal and a deadline: AbortedError promptly, saying whether a write may have applied", async () => {
  await using redis = await startRedis();
  // No probe during the test: every command goes to the (hung) primary and is sent.
  await using store = await StateStore.connect(singleConfig(redis), {
    client: { probeIntervalMs: 60_000 },
  });
  await store.jobs.create("j", { n: 1 });
  redis.kill("SIGSTOP");
  try {
    const cases: Array<[string, () => Promise<unknown>, boolean]> = [
      ["jobs.get", () => store.jobs.get("j", { timeoutMs: 200 }), true],
      [
        "jobs.update",
        () => store.jobs.update("j", { expectedVersion: 1 }, { timeoutMs: 200 }),
        true,
      ],
      ["jobs.list", () => store.jobs.list({ timeoutMs: 200 }), true],
      ["snapshots.save", () => store.snapshots.save("j", "a", 1, {}, { timeoutMs: 200 }), true],
      ["snapshots.load", () => store.snapshots.load("j", "a", { timeoutMs: 200 }), true],
      ["nodes.heartbeat", () => store.nodes.heartbeat("n", { timeoutMs: 200 }), true],
      ["nodes.list", () => store.nodes.list({ timeoutMs: 200 }), true],
      ["bundles.info", () => store.bundles.info("b", { timeoutMs: 200 }), true],
      ["bundles.put", () => store.bundles.put("b", new Uint8Array(10), { timeoutMs: 200 }), true],
      ["events.read", () => store.events.read("j", { timeoutMs: 200 }), true],
    ];
    for (const [what, run, sent] of cases) {
      const started = performance.now();
      const error = await run().then(() => undefined, (e) => e);
      const ms = performance.now() - started;
      assert(error instanceof AbortedError, `${what}: ${error}`);
      assertEquals(error.mayHaveApplied, sent, what);
      // A failed bundle put spends up to 1s more trying to remove its chunks.
      assert(ms < (what === "bundles.put" ? 1600 : 600), `${what} took ${Math.round(ms)}ms`);
    }
    // Appends queue behind one in flight: an aborted queued append was never sent.
    const first = store.events.append("j", { id: "e1", type: "t" }, { timeoutMs: 300 });
    const abort = new AbortController();
    const second = store.events.append("j", { id: "e2", type: "t" }, { signal: abort.signal });
    abort.abort(new Error("caller gave up"));
    const secondError = await second.then(() => undefined, (e) => e);
    assert(secondError instanceof AbortedError && !secondError.mayHaveApplied, `${secondError}`);
    const firstError = await first.then(() => undefined, (e) => e);
    assert(firstError instanceof AbortedError && firstError.mayHaveApplied, `${firstError}`);
  } finally {
    redis.kill("SIGCONT");
  }
  // e2 was never sent; e1 may have been, and a retry is exact either way.
  await store.events.append("j", { id: "e1", type: "t" });
  const ids = (await store.events.read("j")).map((e) => e.id);
  assertEquals(ids, ["e1"]);
});
