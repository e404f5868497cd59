/**
 * The end of a fault run: heal everything, wait until the replicas have
 * every byte of the primary, and read back what the primary holds for the
 * checker.
 */

import { RedisConnection } from "../../lib/protocol/connection.ts";
import { parseInfo, replicasFromInfo } from "../../lib/protocol/info.ts";
import { replyToString, type RespReply } from "../../lib/protocol/resp.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import { waitFor } from "../../lib/common/wait_for.ts";
import type { Config } from "../../lib/ha/config.ts";
import type { FinalState } from "./checker.ts";
import type { Topology } from "./topology.ts";
import { APPEND_JOB, fencedJob, LEASES, listKey, setPrefix } from "./workload.ts";

/** Reads what the primary holds after the run. */
export async function finalState(config: Config): Promise<FinalState> {
  await using store = await StateStore.connect(config);
  const client = store.client;
  const sets: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = (await client.command([
      "SCAN",
      cursor,
      "MATCH",
      `${setPrefix(config.namespace)}:*`,
      "COUNT",
      1000,
    ])) as [RespReply, RespReply[]];
    cursor = replyToString(next) ?? "0";
    for (const k of keys) sets.push(replyToString(k) ?? "");
  } while (cursor !== "0");
  const list = ((await client.command(["LRANGE", listKey(config.namespace), 0, -1])) as RespReply[])
    .map((v) => replyToString(v) ?? "");
  const readAll = async (job: string) => {
    const out = [];
    let after: string | undefined;
    while (true) {
      const page = await store.events.read(job, { after, count: 10_000 });
      out.push(...page);
      if (page.length < 10_000) return out;
      after = page[page.length - 1]!.offset;
    }
  };
  const eventIds = new Map<string, number>();
  for (const e of await readAll(APPEND_JOB)) eventIds.set(e.id, (eventIds.get(e.id) ?? 0) + 1);
  const fenced = new Map<string, { id: string; token: number; holder: string }[]>();
  for (const { name } of LEASES) {
    fenced.set(
      name,
      (await readAll(fencedJob(name))).map((e) => {
        const data = e.data as { token: number; holder: string };
        return { id: e.id, token: data.token, holder: data.holder };
      }),
    );
  }
  return { setKeys: new Set(sets), listValues: list, eventIds, fenced };
}

/** Heals everything and waits until the replicas have every byte of the primary. */
export async function settle(topology: Topology): Promise<void> {
  await topology.heal();
  for (const box of topology.boxes) {
    for (const kind of ["redis", "sentinel"] as const) {
      await topology.signal(box, kind, "CONT");
    }
    const endpointUp = async (port: number): Promise<boolean> => {
      try {
        await using _c = await RedisConnection.connect({ host: box.ip, port }, {
          connectTimeoutMs: 500,
        });
        return true;
      } catch {
        return false;
      }
    };
    if (!(await endpointUp(box.sentinel.port))) await topology.restartSentinel(box);
    if (!(await endpointUp(box.redis.port))) await topology.join(box);
  }
  const primary = await topology.waitAgreement(90_000);
  // A box that is neither primary nor replicating (e.g. detached) joins again.
  for (const box of topology.boxes.filter((b) => b !== primary)) {
    await using c = await RedisConnection.connect(box.redis);
    const info = parseInfo(replyToString(await c.send(["INFO", "replication"])) ?? "");
    if (info.get("role") !== "slave" || info.get("master_host") !== primary.ip) {
      await topology.join(box);
    }
  }
  await waitFor(async () => {
    await using c = await RedisConnection.connect(primary.redis);
    const info = parseInfo(replyToString(await c.send(["INFO", "replication"])) ?? "");
    const offset = Number(info.get("master_repl_offset"));
    const synced = replicasFromInfo(info).filter((r) => r.state === "online" && r.offset >= offset);
    return synced.length >= 2
      ? { done: true, value: undefined }
      : { done: false, observed: `${synced.length} of 2 replicas at offset ${offset}` };
  }, { what: "both replicas to resync", timeoutMs: 90_000, intervalMs: 200 });
}
