import { assert, assertEquals } from "../_harness/assert.ts";
import { Boxes, mnCli } from "../_harness/boxes.ts";
import { startRedis, startWriteLoop, waitFor } from "../_harness/mod.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { WaitError } from "../../lib/common/errors.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { replyToMap, replyToString, type RespReply } from "../../lib/protocol/resp.ts";
import { delay } from "../../lib/common/delay.ts";

async function joinAll(boxes: Boxes): Promise<void> {
  for (let i = 0; i < boxes.boxes.length; i++) {
    const r = await mnCli(boxes.joinArgs(i, i === 0 ? ["--bootstrap"] : []));
    assertEquals(r.code, 0, r.stderr);
  }
  // Wait until every sentinel knows every replica and every other sentinel (failover needs votes).
  const n = boxes.boxes.length;
  await waitFor(async () => {
    for (let i = 0; i < n; i++) {
      await using s = await boxes.sentinel(i);
      const m = replyToMap(await s.send(["SENTINEL", "MASTER", boxes.masterName]));
      if (
        replyToString(m.get("num-slaves") ?? null) !== String(n - 1) ||
        replyToString(m.get("num-other-sentinels") ?? null) !== String(n - 1)
      ) {
        return { done: false, observed: `sentinel ${i} not complete` };
      }
    }
    return { done: true, value: undefined };
  }, { what: "the cluster to be fully discovered", timeoutMs: 20_000, intervalMs: 200 });
}

async function sentinelsList(boxes: Boxes, i: number, address: string): Promise<boolean> {
  await using s = await boxes.sentinel(i);
  const replicas = (await s.send(["SENTINEL", "REPLICAS", boxes.masterName])) as RespReply[];
  const m = replyToMap(await s.send(["SENTINEL", "MASTER", boxes.masterName]));
  const primary = `${replyToString(m.get("ip") ?? null)}:${replyToString(m.get("port") ?? null)}`;
  return primary === address ||
    replicas.some((r) => replyToString(replyToMap(r).get("name") ?? null) === address);
}

Deno.test("mn-redis-ha leave hands over the primary under WAIT 1 load without losing an acknowledged write", async () => {
  await using boxes = await Boxes.create(3);
  await joinAll(boxes);
  const config = boxes.clientConfig();
  await using client = await RedisHaClient.connect(config);
  const loop = startWriteLoop(client, `${config.namespace}:leave`);
  const departed = `127.0.0.1:${boxes.boxes[0]!.redisPort}`;
  try {
    await waitFor(
      () =>
        loop.acked.length >= 200
          ? { done: true, value: undefined }
          : { done: false, observed: `${loop.acked.length}` },
      {
        what: "writes before leave",
        timeoutMs: 20_000,
      },
    );
    const r = await mnCli(boxes.leaveArgs(0, ["--json"]));
    assertEquals(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assertEquals(result.wasPrimary, true);
    assert(result.primary !== departed);
    const before = loop.acked.length;
    await waitFor(
      () =>
        loop.acked.length >= before + 200
          ? { done: true, value: undefined }
          : { done: false, observed: `${loop.acked.length}` },
      {
        what: "writes after leave",
        timeoutMs: 20_000,
      },
    );
    await loop.stop();
    const unexpected = loop.errors.filter((e) => !(e instanceof WaitError));
    assertEquals(unexpected.length, 0, unexpected.map(String).join("; "));
    // Every acknowledged write is on the new primary.
    const [host, port] = result.primary.split(":");
    await using np = await RedisConnection.connect({ host, port: Number(port) });
    const exists = await Promise.all(loop.acked.map((k) => np.send(["EXISTS", k])));
    assertEquals(loop.acked.filter((_, i) => exists[i] !== 1), []);
    // The departed Redis stays detached, and no sentinel pulls it back, for 15 s.
    await using local = await boxes.redis(0);
    const watchUntil = performance.now() + 15_000;
    while (performance.now() < watchUntil) {
      const role = await local.send(["ROLE"]);
      assertEquals(Array.isArray(role) ? replyToString(role[0]) : null, "master");
      for (const i of [1, 2]) assertEquals(await sentinelsList(boxes, i, departed), false);
      await delay(500); // observation interval, not synchronisation
    }
    assert(Number(await local.send(["DBSIZE"])) > 0, "data is preserved by default");
  } finally {
    await loop.stop();
  }
});

Deno.test("mn-redis-ha leave --purge-local detaches a replica and flushes it", async () => {
  await using boxes = await Boxes.create(2);
  await joinAll(boxes);
  {
    await using p = await boxes.redis(0);
    await p.send(["SET", "k", "v"]);
    await p.send(["WAIT", 1, 5000]);
  }
  const r = await mnCli(boxes.leaveArgs(1, ["--purge-local"]));
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes("leave_ok was_primary=false"));
  await using local = await boxes.redis(1);
  assertEquals(await local.send(["DBSIZE"]), 0);
  const role = await local.send(["ROLE"]);
  assertEquals(Array.isArray(role) ? replyToString(role[0]) : null, "master");
  await using p = await boxes.redis(0);
  assertEquals(replyToString(await p.send(["GET", "k"])), "v", "the cluster keeps its data");
});

Deno.test("mn-redis-ha leave --stop shuts the box's Sentinel and Redis down after detaching, keeping its data on disk", async () => {
  await using boxes = await Boxes.create(2);
  await joinAll(boxes);
  {
    await using p = await boxes.redis(0);
    await p.send(["SET", "k", "v"]);
    await p.send(["WAIT", 1, 5000]);
  }
  const r = await mnCli(boxes.leaveArgs(1, ["--stop"]));
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes("leave_ok was_primary=false") && r.stdout.includes("stopped=true"));
  const box = boxes.boxes[1]!;
  for (const port of [box.redisPort, box.sentinelPort]) {
    const refused = await Deno.connect({ hostname: box.host, port }).then((c) => {
      c.close();
      return false;
    }, () => true);
    assert(refused, `port ${port} still open`);
  }
  // Started again from its config, the detached Redis has the data it had.
  const conf = `${box.dataDir}/redis-${box.redisPort}.conf`;
  const started = await new Deno.Command("redis-server", {
    args: [conf],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  assertEquals(started.code, 0);
  await waitFor(async () => {
    const up = await boxes.redis(1).then(async (c) => {
      await c.close();
      return true;
    }, () => false);
    return up ? { done: true, value: undefined } : { done: false, observed: "not up yet" };
  }, { what: "the restarted Redis", timeoutMs: 10_000, intervalMs: 50 });
  await using local = await boxes.redis(1);
  assertEquals(replyToString(await local.send(["GET", "k"])), "v");
  const role = await local.send(["ROLE"]);
  assertEquals(Array.isArray(role) ? replyToString(role[0]) : null, "master", "still detached");
});

Deno.test("mn-redis-ha leave refuses when there is no other Redis, or the box never joined", async () => {
  await using boxes = await Boxes.create(2);
  const alone = await mnCli(boxes.joinArgs(0, ["--bootstrap", "--quorum", "1"]));
  assertEquals(alone.code, 0, alone.stderr);
  const r = await mnCli(boxes.leaveArgs(0));
  assertEquals(r.code, 1);
  assert(r.stderr.includes("no online replica to fail over to"), r.stderr);
  const never = await mnCli(boxes.leaveArgs(1));
  assertEquals(never.code, 1);
  assert(never.stderr.includes("never joined"), never.stderr);
  // A Redis that runs but was never part of the cluster is refused too, and left untouched.
  await using stranger = await startRedis({ port: boxes.boxes[1]!.redisPort });
  const refused = await mnCli(boxes.leaveArgs(1));
  assertEquals(refused.code, 1);
  assert(refused.stderr.includes("never joined"), refused.stderr);
  await using conn = await stranger.connect();
  const role = await conn.send(["ROLE"]);
  assertEquals(Array.isArray(role) ? replyToString(role[0]) : null, "master");
});
