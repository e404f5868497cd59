/**
 * The process and network faults: kills, pauses, partitions, demotions,
 * lost sentinels, a leave and a replica restart.
 */

import { RedisConnection } from "../../lib/protocol/connection.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { parseInfo, replicasFromInfo } from "../../lib/protocol/info.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { waitFor } from "../../lib/common/wait_for.ts";
import { delay } from "../../lib/common/delay.ts";
import { faultWindow, holdFault, killPrimary, type Nemesis, primaryBox, rejoin } from "./fault.ts";
import type { Box } from "./topology.ts";

/** The process and network faults. */
export const PROCESS_NEMESES: readonly Nemesis[] = [
  {
    name: "kill",
    summary: "kill -9 the primary; it restarts and rejoins as a replica",
    run: (c) => killPrimary(c, "kill -9 primary"),
  },
  {
    name: "kill3",
    summary: "kill -9 the primary three times in a row",
    run: async (c) => {
      for (let i = 1; i <= 3; i++) await killPrimary(c, `kill -9 #${i}`);
    },
  },
  {
    name: "pause",
    summary: "SIGSTOP the primary past down-after, then SIGCONT",
    run: async (c) => {
      const box = await primaryBox(c);
      // The fault's length: past down-after (1 s).
      await holdFault(
        c,
        `SIGSTOP box ${box.index}`,
        Math.max(3000, c.faultMs),
        () => c.topology.signal(box, "redis", "STOP"),
        () => c.topology.signal(box, "redis", "CONT"),
      );
    },
  },
  {
    name: "partition",
    summary: "cut the primary's box off from everyone (clients too), then heal",
    run: async (c) => {
      const box = await primaryBox(c);
      await holdFault(
        c,
        `isolate box ${box.index}`,
        Math.max(4000, c.faultMs),
        () => c.topology.partition(box, "all"),
        () => c.topology.heal(),
      );
    },
  },
  {
    name: "partition-peers",
    summary:
      "cut the primary's box off from the other boxes only (clients still reach it), then heal",
    run: async (c) => {
      const box = await primaryBox(c);
      await holdFault(
        c,
        `split box ${box.index} from peers`,
        Math.max(4000, c.faultMs),
        () => c.topology.partition(box, "peers"),
        () => c.topology.heal(),
      );
    },
  },
  {
    name: "demote",
    summary: "REPLICAOF the primary to a caught-up replica behind Sentinel's back",
    run: async (c) => {
      const box = await primaryBox(c);
      await faultWindow(c, `demote box ${box.index}`, async () => {
        await using conn = await RedisConnection.connect(box.redis);
        // The operator's care: hold writes until a replica has all of them, and demote to that one.
        // (REPLICAOF to a lagging replica discards what it lacks, on both nodes: an operator's data
        // loss no client can prevent; see the README.)
        await conn.send(["CLIENT", "PAUSE", 10_000, "WRITE"]);
        let target: Box;
        try {
          const offset = Number(
            parseInfo(replyToString(await conn.send(["INFO", "replication"])) ?? "").get(
              "master_repl_offset",
            ),
          );
          target = await waitFor(async () => {
            const info = parseInfo(replyToString(await conn.send(["INFO", "replication"])) ?? "");
            const caught = replicasFromInfo(info).find((r) => r.offset >= offset);
            const found = c.topology.boxes.find((b) => caught?.address === formatEndpoint(b.redis));
            return found !== undefined
              ? { done: true, value: found }
              : { done: false, observed: `no replica at offset ${offset}` };
          }, {
            what: "a replica to catch up before the demotion",
            timeoutMs: 10_000,
            intervalMs: 10,
          });
          await conn.send(["REPLICAOF", target.redis.host, target.redis.port]);
        } finally {
          await conn.send(["CLIENT", "UNPAUSE"]).catch(() => {});
        }
        await c.topology.waitAgreement(90_000, box.redis);
      });
    },
  },
  {
    name: "kill-sentinel",
    summary: "kill -9 one sentinel (the primary's box), then restart it",
    run: async (c) => {
      const box = await primaryBox(c);
      await holdFault(
        c,
        `kill sentinel ${box.index}`,
        Math.max(3000, c.faultMs),
        () => c.topology.signal(box, "sentinel", "KILL"),
        () => c.topology.restartSentinel(box),
      );
    },
  },
  {
    name: "kill-2-sentinels",
    summary: "kill -9 two sentinels (no failover possible), then restart them",
    run: async (c) => {
      const boxes = c.topology.boxes.slice(0, 2);
      await holdFault(
        c,
        "kill sentinels 1+2",
        Math.max(3000, c.faultMs),
        async () => {
          for (const b of boxes) await c.topology.signal(b, "sentinel", "KILL");
        },
        async () => {
          for (const b of boxes) await c.topology.restartSentinel(b);
        },
      );
    },
  },
  {
    name: "leave",
    summary: "mn-redis-ha leave of the primary's box under load, then rejoin",
    run: async (c) => {
      const box = await primaryBox(c);
      const r = await faultWindow(c, `leave box ${box.index}`, () => c.topology.leave(box));
      if (r.code !== 0) throw new Error(`leave failed: ${r.stderr.trim()}`);
      await rejoin(c, box);
    },
  },
  {
    name: "restart-replica",
    summary: "kill -9 a replica, then restart it",
    run: async (c) => {
      const primary = await primaryBox(c);
      const box = c.topology.boxes.find((b) => b !== primary)!;
      await faultWindow(c, `kill replica ${box.index}`, async () => {
        await c.topology.signal(box, "redis", "KILL");
        await delay(Math.min(2000, c.faultMs));
        await rejoin(c, box);
      });
    },
  },
];
