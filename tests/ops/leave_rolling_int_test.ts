/**
 * Rolling maintenance: leave the primary's box, rejoin it, leave the next
 * primary's box, … six times in a row on three boxes under a durable write
 * load. Each leave must finish within 20 s, no acknowledged write may be
 * lost, and each departed Redis must stay detached until it rejoins.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { Boxes, mnCli } from "../_harness/boxes.ts";
import { startWriteLoop, waitFor } from "../_harness/mod.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { WaitError } from "../../lib/common/errors.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { replyToMap, replyToString } from "../../lib/protocol/resp.ts";

/** Waits until every sentinel knows every replica and every other sentinel. */
async function waitDiscovered(boxes: Boxes): Promise<void> {
  const n = boxes.boxes.length;
  await waitFor(async () => {
    for (let i = 0; i < n; i++) {
      await using s = await boxes.sentinel(i);
      const m = replyToMap(await s.send(["SENTINEL", "MASTER", boxes.masterName]));
      const seen = `${replyToString(m.get("num-slaves") ?? null)} replicas, ${
        replyToString(m.get("num-other-sentinels") ?? null)
      } peers`;
      if (seen !== `${n - 1} replicas, ${n - 1} peers`) {
        return { done: false, observed: `sentinel ${i}: ${seen}` };
      }
    }
    return { done: true, value: undefined };
  }, { what: "the cluster to be fully discovered", timeoutMs: 30_000, intervalMs: 200 });
}

Deno.test("mn-redis-ha leave works in rolling order: 4 cycles of leave-the-primary and rejoin under WAIT 1 load", async () => {
  await using boxes = await Boxes.create(3);
  for (let i = 0; i < 3; i++) {
    const r = await mnCli(boxes.joinArgs(i, i === 0 ? ["--bootstrap"] : []));
    assertEquals(r.code, 0, r.stderr);
  }
  await waitDiscovered(boxes);
  const config = boxes.clientConfig();
  await using client = await RedisHaClient.connect(config);
  const loop = startWriteLoop(client, `${config.namespace}:rolling`);
  const progress = async (count: number, what: string): Promise<void> => {
    const target = loop.acked.length + count;
    await waitFor(
      () =>
        loop.acked.length >= target
          ? { done: true, value: undefined }
          : { done: false, observed: `${loop.acked.length} of ${target}` },
      { what, timeoutMs: 30_000 },
    );
  };
  const leaveMs: number[] = [];
  try {
    await progress(100, "writes before the first leave");
    for (let cycle = 1; cycle <= 4; cycle++) {
      const primary = client.primary!.address;
      const index = boxes.boxes.findIndex((b) => `${b.host}:${b.redisPort}` === primary);
      assert(index !== -1, `primary ${primary} is one of the boxes`);
      const started = performance.now();
      const left = await mnCli(boxes.leaveArgs(index, ["--json"]));
      leaveMs.push(performance.now() - started);
      assertEquals(left.code, 0, `cycle ${cycle} leave: ${left.stderr}`);
      assertEquals(JSON.parse(left.stdout).wasPrimary, true);
      await progress(50, `writes after leave ${cycle}`);
      await using departed = await boxes.redis(index);
      const role = await departed.send(["ROLE"]);
      assertEquals(Array.isArray(role) ? replyToString(role[0]) : null, "master", "detached");
      const joined = await mnCli(boxes.joinArgs(index));
      assertEquals(joined.code, 0, `cycle ${cycle} rejoin: ${joined.stderr}`);
      await waitDiscovered(boxes);
    }
    await loop.stop();
    const unexpected = loop.errors.filter((e) => !(e instanceof WaitError));
    assertEquals(unexpected.map(String), []);
    const [host, port] = client.primary!.address.split(":");
    await using np = await RedisConnection.connect({ host: host!, port: Number(port) });
    // EXISTS counts the keys of a batch that exist: every batch must count them all.
    for (let i = 0; i < loop.acked.length; i += 1000) {
      const batch = loop.acked.slice(i, i + 1000);
      assertEquals(await np.send(["EXISTS", ...batch]), batch.length, `acked keys ${i}+`);
    }
    // deno-lint-ignore no-console -- the measured figures, quoted in the README
    console.log(`leave times: ${leaveMs.map((ms) => `${(ms / 1000).toFixed(1)}s`).join(", ")}`);
    assert(leaveMs.every((ms) => ms < 20_000), `leave times ${leaveMs.map(Math.round).join(", ")}`);
  } finally {
    await loop.stop();
  }
});
