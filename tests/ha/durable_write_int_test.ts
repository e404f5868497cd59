import { assert, assertEquals, assertRejects, assertThrows } from "../_harness/assert.ts";
import { startCluster } from "../_harness/mod.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { GroupWait } from "../../lib/ha/durable_write.ts";
import { ReplyError, WaitError } from "../../lib/common/errors.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { Script } from "../../lib/protocol/script.ts";

/** Calls of `command` on the node so far, from `INFO commandstats`. */
async function calls(conn: RedisConnection, command: string): Promise<number> {
  const info = parseInfo(replyToString(await conn.send(["INFO", "commandstats"])) ?? "");
  return Number(/calls=(\d+)/.exec(info.get(`cmdstat_${command}`) ?? "")?.[1] ?? 0);
}

Deno.test("GroupWait sends one WAIT after a run of writes, in the same socket write as the last of them", async () => {
  // 50 writes go out in socket writes of at most 16 commands; one WAIT, in the last, covers all.
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  await using admin = await cluster.nodes[0]!.connect();
  await using conn = await RedisConnection.connect(cluster.nodes[0]!.endpoint);
  const wait = new GroupWait(conn, 1, 1000);
  const waitsBefore = await calls(admin, "wait");
  const batchesBefore = conn.batchesWritten;
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => wait.write(["SET", `gw:${i}`, `v${i}`])),
  );
  assertEquals(results.map((r) => replyToString(r)), Array(50).fill("OK"));
  const batches = conn.batchesWritten - batchesBefore;
  assertEquals(batches, 4, "50 writes: 4 socket writes of at most 16 (the last with the WAIT)");
  assertEquals(await calls(admin, "wait") - waitsBefore, 1, "one WAIT for the whole run");

  // A write issued after that run went out gets its own WAIT, in its own socket write.
  await wait.write(["SET", "gw:later", "v"]);
  assertEquals(conn.batchesWritten - batchesBefore, batches + 1);
  assertEquals(await calls(admin, "wait") - waitsBefore, 2);
  await using replica = await cluster.nodes[1]!.connect();
  assertEquals(replyToString(await replica.send(["GET", "gw:later"])), "v");
});

Deno.test("GroupWait: a long queue gets a WAIT every 1,024 commands, not one at its very end", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  await using admin = await cluster.nodes[0]!.connect();
  await using conn = await RedisConnection.connect(cluster.nodes[0]!.endpoint);
  const wait = new GroupWait(conn, 1, 1000);
  const waitsBefore = await calls(admin, "wait");
  const results = await Promise.all(
    Array.from({ length: 3000 }, (_, i) => wait.write(["SET", `gw:long:${i}`, "v"])),
  );
  assertEquals(results.length, 3000);
  assertEquals(await calls(admin, "wait") - waitsBefore, 3, "1,024 + 1,024 + the last 952");
});

Deno.test("GroupWait reports acked/required when too few replicas acknowledge", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  await using conn = await RedisConnection.connect(cluster.nodes[0]!.endpoint);
  await conn.send(["WAIT", 1, 10_000]); // the replica is attached and caught up
  const wait = new GroupWait(conn, 2, 200);
  const error = await assertRejects(() => wait.write(["SET", "gw:k", "v"]), WaitError);
  assertEquals([error.required, error.timeoutMs], [2, 200]);
  assert(error.acked <= 1, `one replica can acknowledge at most once, got ${error.acked}`);
  assertThrows(() => new GroupWait(conn, 0, 100), RangeError);
});

Deno.test("GroupWait rethrows a failed write as it is", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  await using conn = await RedisConnection.connect(cluster.nodes[0]!.endpoint);
  await conn.send(["LPUSH", "gw:list", "x"]);
  const wait = new GroupWait(conn, 1, 1000);
  const error = await assertRejects(() => wait.write(["INCR", "gw:list"]), ReplyError);
  assertEquals(error.prefix, "WRONGTYPE");
});

Deno.test("a script's EVAL after NOSCRIPT is covered by a WAIT of its own", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  await using admin = await cluster.nodes[0]!.connect();
  await using conn = await RedisConnection.connect(cluster.nodes[0]!.endpoint);
  const wait = new GroupWait(conn, 1, 1000);
  const script = new Script(
    "test-set",
    `redis.call('SET', KEYS[1], ARGV[1]) return ${crypto.getRandomValues(new Uint32Array(1))[0]}`,
  );
  const waitsBefore = await calls(admin, "wait");
  // The first run misses the script cache: EVALSHA (NOSCRIPT), then EVAL with its own WAIT.
  await script.run((args) => wait.write(args), ["gw:script"], ["v1"]);
  assertEquals(await calls(admin, "wait") - waitsBefore, 2);
  await using replica = await cluster.nodes[1]!.connect();
  assertEquals(replyToString(await replica.send(["GET", "gw:script"])), "v1");
  await script.run((args) => wait.write(args), ["gw:script"], ["v2"]);
  assertEquals(await calls(admin, "wait") - waitsBefore, 3, "a cached script: one WAIT");
  assert(await calls(admin, "eval") >= 1);
});
