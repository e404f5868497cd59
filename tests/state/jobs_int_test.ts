import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "../_harness/mod.ts";
import {
  AlreadyExistsError,
  InvalidTransitionError,
  KeyTypeError,
  NotFoundError,
  ValidationError,
  VersionConflictError,
} from "../../lib/common/state_errors.ts";

Deno.test("JobStore creates, reads and updates a job with optimistic concurrency", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  const created = await store.jobs.create("job-1", { task: "index", n: 1 });
  assertEquals(created.version, 1);
  assertEquals(created.status, "pending");
  const read = (await store.jobs.get("job-1"))!;
  assertEquals(read.data, { task: "index", n: 1 });
  assert(read.createdAt > 0 && read.updatedAt === read.createdAt);
  const updated = await store.jobs.update("job-1", {
    expectedVersion: 1,
    status: "running",
    data: { n: 2 },
  });
  assertEquals(updated.version, 2);
  assertEquals(updated.status, "running");
  assertEquals(updated.data, { n: 2 });
  const statusOnly = await store.jobs.update("job-1", { expectedVersion: 2, status: "running" });
  assertEquals(statusOnly.data, { n: 2 }, "an update without data keeps the data");
  const conflict = await assertRejects(
    () => store.jobs.update("job-1", { expectedVersion: 1, status: "failed" }),
    VersionConflictError,
  );
  assertEquals([conflict.expected, conflict.actual], [1, 3]);
  assertEquals((await store.jobs.get("job-1"))!.version, 3, "a conflicting update writes nothing");
});

Deno.test("JobStore recognises a retried request instead of reporting a conflict or duplicate", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await store.jobs.create("j", {}, { requestId: "create-1" });
  // The same create again (as after a lost reply) succeeds; another request is a duplicate.
  await store.jobs.create("j", {}, { requestId: "create-1" });
  await assertRejects(
    () => store.jobs.create("j", {}, { requestId: "create-2" }),
    AlreadyExistsError,
  );
  await store.jobs.update("j", { expectedVersion: 1, status: "running", requestId: "u1" });
  const again = await store.jobs.update("j", {
    expectedVersion: 1,
    status: "running",
    requestId: "u1",
  });
  assertEquals(again.version, 2, "the retried update is applied once");
});

Deno.test("JobStore never leaves a terminal status", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await store.jobs.create("j", {});
  await store.jobs.update("j", { expectedVersion: 1, status: "succeeded" });
  const error = await assertRejects(
    () => store.jobs.update("j", { expectedVersion: 2, status: "running" }),
    InvalidTransitionError,
  );
  assertEquals([error.from, error.to], ["succeeded", "running"]);
  // Data may still be annotated while the status stays terminal.
  const annotated = await store.jobs.update("j", {
    expectedVersion: 2,
    data: { note: "archived" },
  });
  assertEquals(annotated.status, "succeeded");
});

Deno.test("JobStore lists jobs by status in pages", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  for (let i = 0; i < 25; i++) await store.jobs.create(`job-${String(i).padStart(2, "0")}`, { i });
  for (let i = 0; i < 10; i++) {
    await store.jobs.update(`job-${String(i).padStart(2, "0")}`, {
      expectedVersion: 1,
      status: "running",
    });
  }
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.jobs.list({ limit: 7, cursor });
    seen.push(...page.jobs.map((j) => j.id));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  assertEquals(seen.length, 25);
  assertEquals(new Set(seen).size, 25);
  const running = await store.jobs.list({ status: "running", limit: 100 });
  assertEquals(running.jobs.length, 10);
  assert(running.jobs.every((j) => j.status === "running"));
  assertEquals((await store.jobs.list({ status: "pending" })).jobs.length, 15);
  assertEquals(running.nextCursor, undefined);
});

Deno.test("JobStore rejects bad input with typed errors and writes nothing", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), { maxRecordBytes: 1024 });
  await assertRejects(() => store.jobs.create("", {}), ValidationError);
  await assertRejects(() => store.jobs.create("x".repeat(200), {}), ValidationError);
  await assertRejects(() => store.jobs.create("a:b", {}), ValidationError);
  await assertRejects(() => store.jobs.create("j", { big: 1n }), ValidationError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  await assertRejects(() => store.jobs.create("j", cyclic), ValidationError);
  await assertRejects(() => store.jobs.create("j", undefined), ValidationError);
  await assertRejects(() => store.jobs.create("j", "x".repeat(2000)), ValidationError);
  await assertRejects(
    () => store.jobs.create("j", {}, { status: "bogus" as "pending" }),
    ValidationError,
  );
  assertEquals(await store.jobs.get("missing"), null);
  await assertRejects(() => store.jobs.update("missing", { expectedVersion: 1 }), NotFoundError);
  await assertRejects(() => store.jobs.update("j", { expectedVersion: 0 }), ValidationError);
  await assertRejects(() => store.jobs.list({ limit: 0 }), ValidationError);
  await assertRejects(() => store.jobs.list({ cursor: "garbage" }), ValidationError);
  // A key of the wrong type left by something else.
  await store.client.command(["SET", store.keys.job("taken"), "not a hash"]);
  const error = await assertRejects(() => store.jobs.create("taken", {}), KeyTypeError);
  assertEquals(error.key, store.keys.job("taken"));
  assertEquals(await store.client.command(["DBSIZE"]), 1, "nothing else was written");
});

Deno.test("JobStore.list() pages 600 jobs of one millisecond at several page sizes: no duplicates, no gaps, terminates", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  // A burst: creates queue up behind CLIENT PAUSE WRITE and then run back to back.
  await using pauser = await redis.connect();
  await pauser.send(["CLIENT", "PAUSE", 5000, "WRITE"]);
  const ids = Array.from({ length: 600 }, (_, i) => `burst-${String(i).padStart(3, "0")}`);
  const creating = Promise.all(ids.map((id) => store.jobs.create(id, {})));
  await pauser.send(["CLIENT", "UNPAUSE"]);
  await creating;
  // The burst spans a few milliseconds here; put every job in the same one, as a busier
  // server (or a coarser clock) would, so the cursor's tie-break carries the whole listing.
  const index = store.keys.jobIndex();
  const pending = store.keys.jobStatusIndex("pending");
  for (const key of [index, pending]) {
    await store.client.command([
      "ZADD",
      key,
      "XX",
      ...ids.flatMap((id) => [1_700_000_000_000, id]),
    ]);
  }
  for (const limit of [1, 7, 100, 599, 600, 1000]) {
    for (const status of [undefined, "pending" as const]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.jobs.list({ limit, cursor, status });
        seen.push(...page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
        pages++;
        assert(pages <= 601, `limit ${limit}: more pages than jobs`);
      } while (cursor !== undefined);
      assertEquals(seen, ids, `limit ${limit}, status ${status}`);
    }
  }
  // A cursor whose job left the index still resumes right after it.
  const first = await store.jobs.list({ limit: 10, status: "pending" });
  await store.jobs.update(first.jobs[9]!.id, { expectedVersion: 1, status: "running" });
  const rest = await store.jobs.list({ limit: 1000, status: "pending", cursor: first.nextCursor });
  assertEquals(rest.jobs.map((j) => j.id), ids.slice(10));
});

Deno.test("JobStore.update returns the record as this update left it, in one round trip", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await store.jobs.create("j", { n: 0 });
  // Two updates pipelined: the first one's result must not show the second one's change.
  const [first, second] = await Promise.all([
    store.jobs.update("j", { expectedVersion: 1, status: "running", data: { n: 1 } }),
    store.jobs.update("j", { expectedVersion: 2, data: { n: 2 } }),
  ]);
  assertEquals([first.version, first.status, first.data], [2, "running", { n: 1 }]);
  assertEquals([second.version, second.status, second.data], [3, "running", { n: 2 }]);
  assertEquals(second.createdAt, first.createdAt);
  assert(second.updatedAt >= first.updatedAt);
  // A retried request (same requestId) gets the record it produced, not a conflict.
  const third = await store.jobs.update("j", { expectedVersion: 3, requestId: "r-1" });
  const again = await store.jobs.update("j", { expectedVersion: 3, requestId: "r-1" });
  assertEquals(again, third);
  assertEquals(again.data, { n: 2 });
});

Deno.test("JobStore.update checks key types before it writes: a bad status index writes nothing", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await store.jobs.create("j", { n: 0 });
  const index = store.keys.jobStatusIndex("running");
  await store.client.command(["SET", index, "not a zset"]);
  const error = await assertRejects(
    () => store.jobs.update("j", { expectedVersion: 1, status: "running" }),
    KeyTypeError,
  );
  assertEquals(error.key, index);
  const job = (await store.jobs.get("j"))!;
  assertEquals([job.version, job.status], [1, "pending"]);
  assertEquals((await store.jobs.list({ status: "pending" })).jobs.map((j) => j.id), ["j"]);
  await store.client.command(["SET", store.keys.job("s"), "x"]);
  assertEquals(
    (await assertRejects(() => store.jobs.update("s", { expectedVersion: 1 }), KeyTypeError)).key,
    store.keys.job("s"),
  );
});
