import { assertEquals, assertRejects } from "../_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "../_harness/mod.ts";
import { KeyTypeError, ValidationError } from "../../lib/common/state_errors.ts";

Deno.test("SnapshotStore keeps the highest sequence: an older one never overwrites a newer", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  assertEquals(await store.snapshots.load("j", "agent-1"), null);
  assertEquals(await store.snapshots.save("j", "agent-1", 5, { step: 5 }), {
    stored: true,
    currentSeq: 5,
  });
  assertEquals(await store.snapshots.save("j", "agent-1", 3, { step: 3 }), {
    stored: false,
    currentSeq: 5,
  });
  assertEquals(await store.snapshots.save("j", "agent-1", 5, { step: "again" }), {
    stored: false,
    currentSeq: 5,
  });
  assertEquals((await store.snapshots.load("j", "agent-1"))?.data, { step: 5 });
  assertEquals(await store.snapshots.save("j", "agent-1", 6, { step: 6 }), {
    stored: true,
    currentSeq: 6,
  });
  const latest = await store.snapshots.load("j", "agent-1");
  assertEquals([latest?.seq, latest?.data], [6, { step: 6 }]);
  assertEquals(await store.snapshots.load("j", "agent-2"), null, "agents are separate");
});

Deno.test("SnapshotStore rejects bad input and keys of the wrong type", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), { maxRecordBytes: 1024 });
  await assertRejects(() => store.snapshots.save("j", "a", -1, {}), ValidationError);
  await assertRejects(() => store.snapshots.save("j", "a", 1.5, {}), ValidationError);
  await assertRejects(() => store.snapshots.save("j", "bad id", 1, {}), ValidationError);
  await assertRejects(() => store.snapshots.save("j", "a", 1, "x".repeat(5000)), ValidationError);
  await store.client.command(["LPUSH", store.keys.snapshot("j", "a"), "x"]);
  await assertRejects(() => store.snapshots.save("j", "a", 1, {}), KeyTypeError);
  await assertRejects(() => store.snapshots.load("j", "a"), KeyTypeError);
});
