import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "../_harness/mod.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import { FencedError, KeyTypeError, ValidationError } from "../../lib/common/state_errors.ts";
import type { StoredEvent } from "../../lib/state/event_history.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { acquireLease } from "../../lib/state/lease.ts";
import { replyToString } from "../../lib/protocol/resp.ts";

Deno.test("EventHistory appends in order and reads ranges from an offset", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  // Fired concurrently, from one writer: order must be kept.
  const results = await Promise.all(
    Array.from(
      { length: 500 },
      (_, i) => store.events.append("j", { id: `e${i}`, type: "step", data: { i } }),
    ),
  );
  assert(results.every((r) => !r.duplicate));
  const all = await store.events.read("j", { count: 1000 });
  assertEquals(all.map((e) => e.id), Array.from({ length: 500 }, (_, i) => `e${i}`));
  assertEquals(all[7]!.data, { i: 7 });
  const after = await store.events.read("j", { after: all[9]!.offset, count: 5 });
  assertEquals(after.map((e) => e.id), ["e10", "e11", "e12", "e13", "e14"]);
});

Deno.test("EventHistory stores an event id once, even when appended again", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  const first = await store.events.append("j", { id: "evt-1", type: "t" });
  const again = await store.events.append("j", { id: "evt-1", type: "t" });
  assertEquals(again, { offset: first.offset, duplicate: true });
  assertEquals((await store.events.read("j")).length, 1);
});

Deno.test("EventHistory stores an append once when the connection drops mid-write and it is retried", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis, {
    reconnectBackoffMs: 20,
    reconnectMaxBackoffMs: 50,
    reconnectAttempts: 50,
  });
  await using store = await StateStore.connect(config, {
    client: { probeIntervalMs: 100, probeTimeoutMs: 200 },
  });
  await store.events.append("j", { id: "warm", type: "t" });
  const probeFailed = Promise.withResolvers<void>();
  store.client.events.on("probe-failed", () => probeFailed.resolve());
  let retries = 0;
  store.client.events.on("reconnecting", () => retries++);
  // The server hangs with the append in its socket buffer; the client's probe drops the
  // connection (outcome unknown); the server then runs the append; the client retries it.
  redis.kill("SIGSTOP");
  const appended = store.events.append("j", { id: "evt-dropped", type: "t" });
  await probeFailed.promise;
  redis.kill("SIGCONT");
  const result = await appended;
  const events = await store.events.read("j");
  assertEquals(events.filter((e) => e.id === "evt-dropped").length, 1);
  assertEquals(events.find((e) => e.id === "evt-dropped")?.offset, result.offset);
  assert(retries > 0, "the append was retried after the drop");
});

Deno.test("EventHistory tails new events as they are appended", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await store.events.append("j", { id: "old", type: "t" });
  const old = await store.events.read("j");
  const abort = new AbortController();
  const deadline = setTimeout(() => abort.abort(), 10_000); // a failing tail must not hang the suite
  const seen: StoredEvent[] = [];
  const tail = (async () => {
    for await (
      const event of store.events.tail("j", {
        after: old[0]!.offset,
        signal: abort.signal,
        blockMs: 100,
      })
    ) {
      seen.push(event);
      if (seen.length === 3) abort.abort();
    }
  })();
  for (let i = 0; i < 3; i++) await store.events.append("j", { id: `new-${i}`, type: "t" });
  await tail;
  clearTimeout(deadline);
  assertEquals(seen.map((e) => e.id), ["new-0", "new-1", "new-2"]);
});

Deno.test("EventHistory rejects bad input and keys of the wrong type", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), { maxRecordBytes: 1024 });
  await assertRejects(() => store.events.append("j", { id: "", type: "t" }), ValidationError);
  await assertRejects(() => store.events.append("j", { id: "e", type: "" }), ValidationError);
  await assertRejects(
    () => store.events.append("j", { id: "e", type: "t", data: "x".repeat(5000) }),
    ValidationError,
  );
  await assertRejects(() => store.events.read("j", { after: "nope" }), ValidationError);
  await store.client.command(["SET", store.keys.events("j"), "x"]);
  await assertRejects(() => store.events.append("j", { id: "e", type: "t" }), KeyTypeError);
  await assertRejects(() => store.events.read("j"), KeyTypeError);
});

Deno.test("EventHistory writes many jobs' appends in one script call; a failed job fails alone", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await using admin = await redis.connect();
  const scriptCalls = async (): Promise<number> => {
    const info = parseInfo(replyToString(await admin.send(["INFO", "commandstats"])) ?? "");
    return ["evalsha", "eval"].reduce(
      (n, c) => n + Number(/calls=(\d+)/.exec(info.get(`cmdstat_${c}`) ?? "")?.[1] ?? 0),
      0,
    );
  };
  await store.events.append("warm", { id: "w", type: "t" }); // loads the script
  // Job "bad" has a stream key of the wrong type; job "fenced" presents a stale token.
  await store.client.command(["SET", store.keys.events("bad"), "x"]);
  await using lease = await acquireLease(store, "job.fenced", { holder: "h", ttlMs: 60_000 });
  const before = await scriptCalls();
  const outcomes = await Promise.allSettled([
    ...Array.from(
      { length: 40 },
      (_, i) => store.events.append(`job-${i % 10}`, { id: `e${i}`, type: "t", data: i }),
    ),
    store.events.append("bad", { id: "b", type: "t" }),
    store.events.append("fenced", { id: "f", type: "t" }, {
      fence: { lease: "job.fenced", token: lease.token + 1 },
    }),
  ]);
  assertEquals(await scriptCalls() - before, 1, "42 appends over 12 jobs: one script call");
  assert(outcomes.slice(0, 40).every((o) => o.status === "fulfilled"));
  assert(outcomes[40]!.status === "rejected" && outcomes[40]!.reason instanceof KeyTypeError);
  assert(outcomes[41]!.status === "rejected" && outcomes[41]!.reason instanceof FencedError);
  for (let j = 0; j < 10; j++) {
    const events = await store.events.read(`job-${j}`);
    assertEquals(events.map((e) => e.id), [0, 1, 2, 3].map((k) => `e${j + 10 * k}`));
  }
  assertEquals(await store.events.read("fenced"), [], "a fenced append writes nothing");
});

Deno.test("EventHistory keeps each job's order with many writers and batches in flight", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  // 20 writers, each appending 50 events to its own job and 50 to a shared one.
  await Promise.all(Array.from({ length: 20 }, async (_, w) => {
    for (let i = 0; i < 50; i++) {
      await Promise.all([
        store.events.append(`own-${w}`, { id: `${i}`, type: "t" }),
        store.events.append("shared", { id: `${w}-${i}`, type: "t" }),
      ]);
    }
  }));
  for (let w = 0; w < 20; w++) {
    const own = await store.events.read(`own-${w}`);
    assertEquals(own.map((e) => e.id), Array.from({ length: 50 }, (_, i) => `${i}`));
  }
  const shared = await store.events.read("shared", { count: 10_000 });
  assertEquals(shared.length, 1000);
  for (let w = 0; w < 20; w++) {
    const mine = shared.filter((e) => e.id.startsWith(`${w}-`)).map((e) => e.id);
    assertEquals(mine, Array.from({ length: 50 }, (_, i) => `${w}-${i}`), `writer ${w}'s order`);
  }
});
