import { assertEquals, assertRejects } from "./_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "./_harness/mod.ts";
import { NotFoundError } from "../lib/errors.ts";
import { acquireLease, observeLease } from "../lib/lease.ts";
import { RedisHaClient } from "../lib/client.ts";
import { StateStore } from "../lib/state_store.ts";
import { replyToString } from "../lib/resp.ts";

Deno.test("StateStore namespaces never see each other's records", async () => {
  await using redis = await startRedis();
  await using a = await openStore(singleConfig(redis, { namespace: "tenant_a" }));
  await using b = await openStore(singleConfig(redis, { namespace: "tenant_b" }));
  await a.jobs.create("job-1", { owner: "a" });
  await b.jobs.create("job-1", { owner: "b" });
  assertEquals((await a.jobs.get("job-1")).data, { owner: "a" });
  assertEquals((await b.jobs.get("job-1")).data, { owner: "b" });
  await a.events.append("job-1", { id: "e1", type: "t" });
  assertEquals(await b.events.read("job-1"), []);
  await a.nodes.register("n1", { ttlMs: 10_000 });
  assertEquals(await b.nodes.list(), []);
  await a.bundles.put("bundle", new Uint8Array([1, 2, 3]));
  await assertRejects(() => b.bundles.get("bundle"), NotFoundError);
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
