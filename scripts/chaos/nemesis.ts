/**
 * The faults the suite injects, one per run (or several in a mixed run). Each
 * marks its fault window in the history and leaves the cluster healed: every
 * process running, every partition removed, every box a member again.
 */

import { RedisConnection } from "../../lib/protocol/connection.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { parseInfo, replicasFromInfo } from "../../lib/protocol/info.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { waitFor } from "../../lib/common/wait_for.ts";
import { delay } from "../../lib/common/delay.ts";
import type { History } from "./history.ts";
import type { Box, Topology } from "./topology.ts";

/** What a nemesis gets. */
export interface NemesisContext {
  readonly topology: Topology;
  readonly history: History;
  /** How long a fault lasts (scaled by --duration). */
  readonly faultMs: number;
  readonly report: (line: string) => void;
}

/** A named fault. */
export interface Nemesis {
  readonly name: string;
  readonly summary: string;
  run(context: NemesisContext): Promise<void>;
}

/**
 * Runs a fault: marks its window in the history from now until `fn` (which
 * injects the fault and, where it ends it, heals) has finished.
 */
async function faultWindow<T>(c: NemesisContext, label: string, fn: () => Promise<T>): Promise<T> {
  const mark = c.history.mark({ what: "fault", label, from: c.history.now() });
  try {
    return await fn();
  } finally {
    mark.to = c.history.now();
  }
}

async function primaryBox(c: NemesisContext): Promise<Box> {
  return await c.topology.waitAgreement();
}

/** Brings a box back as a member: starts what is not running (from its config) and joins. */
async function rejoin(c: NemesisContext, box: Box): Promise<void> {
  c.report(`chaos: box ${box.index} rejoins`);
  await c.topology.join(box);
}

async function killPrimary(c: NemesisContext, label: string): Promise<void> {
  const box = await primaryBox(c);
  await faultWindow(c, `${label} box ${box.index}`, async () => {
    await c.topology.signal(box, "redis", "KILL");
    await c.topology.waitAgreement(60_000, box.redis);
  });
  await rejoin(c, box);
}

/** Injects a fault, holds it for `holdMs`, then ends it, whatever happened meanwhile. */
function holdFault(
  c: NemesisContext,
  label: string,
  holdMs: number,
  inject: () => Promise<void>,
  heal: () => Promise<void>,
): Promise<void> {
  return faultWindow(c, label, async () => {
    await inject();
    try {
      await delay(holdMs);
    } finally {
      await heal();
    }
  });
}

/** Every nemesis, by name. */
export const NEMESES: readonly Nemesis[] = [
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

/** Looks up nemeses by a `--nemesis` value: names, comma-separated, or `all`. */
export function selectNemeses(value: string): Nemesis[] | string {
  if (value === "all") return [...NEMESES];
  const picked: Nemesis[] = [];
  for (const name of value.split(",").map((n) => n.trim())) {
    const found = NEMESES.find((n) => n.name === name);
    if (found === undefined) {
      return `unknown nemesis "${name}"; expected one of ${
        NEMESES.map((n) => n.name).join(", ")
      }, or all`;
    }
    picked.push(found);
  }
  return picked;
}
