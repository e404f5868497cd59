/**
 * The faults of the environment production runs in: slow and lossy links,
 * a full disk, a full memory, a skewed clock, a whole box lost, clients cut
 * off from the sentinels, and a power loss. Each records what it showed as
 * notes for the run's report.
 */

import { RedisConnection } from "../../lib/protocol/connection.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { waitFor } from "../../lib/common/wait_for.ts";
import { delay } from "../../lib/common/delay.ts";
import { holderOverlap } from "./checker.ts";
import {
  faultWindow,
  holdFault,
  type Nemesis,
  type NemesisContext,
  primaryBox,
  rejoin,
} from "./fault.ts";
import type { Hold, Op } from "./history.ts";
import { type Box, run } from "./topology.ts";
import { CONTENDER_USER } from "./workload.ts";

/** Operations that ended in `window` (history ms) and how many failed with an error named `name`. */
function outcomes(
  c: NemesisContext,
  window: { from: number; to: number },
  name?: string,
): { ok: number; refused: number } {
  const ops = c.history.entries.filter((e): e is Op =>
    e.type === "op" && e.completedAt !== undefined && e.completedAt >= window.from &&
    e.completedAt <= window.to
  );
  return {
    ok: ops.filter((o) => o.outcome === "ok").length,
    refused: name === undefined
      ? 0
      : ops.filter((o) => o.error?.startsWith(`${name}:`) === true).length,
  };
}

/** Sentinel's switches recorded in `window`. */
function switchesIn(c: NemesisContext, window: { from: number; to: number }): number {
  return c.history.entries.filter((e) =>
    e.type === "mark" && e.what === "switch" && e.from >= window.from && e.from <= window.to
  ).length;
}

/** Runs `fn` as a fault window and returns the window (history ms). */
async function timed(
  c: NemesisContext,
  label: string,
  fn: () => Promise<void>,
): Promise<{ from: number; to: number }> {
  const from = c.history.now();
  await faultWindow(c, label, fn);
  return { from, to: c.history.now() };
}

/** Fills a box's data dir (a tmpfs) to all but `leaveBytes`, with a filler file. */
async function fill(path: string, bytes: number): Promise<void> {
  await using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(1024 * 1024);
  let left = bytes;
  while (left > 0) {
    const n = await file.write(chunk.subarray(0, Math.min(chunk.length, left))).catch(() => 0);
    if (n === 0) break;
    left -= n;
  }
}

/** One `INFO` section of a box's Redis (or its Sentinel). */
async function info(
  box: Box,
  section: string,
  of: "redis" | "sentinel" = "redis",
): Promise<Map<string, string>> {
  await using conn = await RedisConnection.connect(box[of], { connectTimeoutMs: 1000 });
  return parseInfo(replyToString(await conn.send(["INFO", section], { timeoutMs: 1000 })) ?? "");
}

/** How far the `clock-step` nemesis steps the wall clock, seconds (well past a lease's 3 s TTL). */
const CLOCK_STEP_S = 5;

/**
 * Steps this machine's wall clock by `seconds` (`date -s`, relative, so the
 * step is exact and stepping back restores the time). Needs CAP_SYS_TIME.
 */
async function stepWallClock(seconds: number): Promise<void> {
  const r = await run("date", ["-s", `${seconds > 0 ? "+" : ""}${seconds} seconds`]);
  if (r.code !== 0) throw new Error(`date -s ${seconds} seconds failed: ${r.stderr.trim()}`);
}

/** How many sentinels report `sentinel_tilt:1`. */
async function sentinelsInTilt(c: NemesisContext): Promise<number> {
  let n = 0;
  for (const box of c.topology.boxes) {
    // Not answering: not counted.
    const sentinel = await info(box, "sentinel", "sentinel").catch(() => new Map());
    if (sentinel.get("sentinel_tilt") === "1") n++;
  }
  return n;
}

/**
 * The wall clock steps {@link CLOCK_STEP_S} s forward, then back (every box's:
 * they share this machine's kernel). Redis expiry follows the wall clock, so
 * every lease key expires at once while its holder, timing on its monotonic
 * clock, still believes it holds; the sentinels enter TILT (no failover).
 */
async function stepTheServersClock(c: NemesisContext): Promise<void> {
  const primary = await primaryBox(c);
  const expiredKeys = async (): Promise<number> =>
    Number((await info(primary, "stats")).get("expired_keys"));
  // Every lease held (a key to expire), not between a release and the next grant.
  await waitFor(() => {
    const free = [...c.workload.contenders].filter(([, names]) =>
      !names.some((n) => c.workload.holds(n))
    ).map(([lease]) => lease);
    return free.length === 0
      ? { done: true, value: undefined }
      : { done: false, observed: `nobody holds ${free.join(", ")}` };
  }, { what: "every lease to be held", timeoutMs: 30_000, intervalMs: 5 });
  const before = await expiredKeys();
  const from = c.history.now();
  let expired = 0;
  let tilted = 0;
  await faultWindow(c, `wall clock +${CLOCK_STEP_S} s`, async () => {
    await stepWallClock(CLOCK_STEP_S);
    try {
      // Sentinel's timer sees the leap on its next run (every 100 ms) and enters TILT.
      const until = performance.now() + 3000;
      while ((tilted = await sentinelsInTilt(c)) < c.topology.boxes.length) {
        if (performance.now() > until) break;
        await delay(100);
      }
      expired = (await expiredKeys()) - before;
      await delay(2000);
    } finally {
      await stepWallClock(-CLOCK_STEP_S);
    }
  });
  // The grants made after the step, recorded once they end, and the holds they overlapped.
  const holds = await waitFor(() => {
    const all = c.history.entries.filter((e): e is Hold => e.type === "hold" && e.to >= from);
    const leases = new Set(all.filter((h) => h.from > from).map((h) => h.lease));
    return leases.size === c.workload.contenders.size
      ? { done: true, value: all }
      : { done: false, observed: `${leases.size} leases granted again since the step` };
  }, { what: "every lease to change hands after the step", timeoutMs: 30_000, intervalMs: 50 });
  const overlap = [...c.workload.contenders.keys()].map((lease) =>
    Math.round(holderOverlap(holds.filter((h) => h.lease === lease)).maxMs)
  );
  const stale =
    c.history.entries.filter((e): e is Op =>
      e.type === "op" && e.kind === "fenced" && e.invokedAt >= from &&
      e.error?.startsWith("FencedError") === true
    ).length;
  c.note(
    `clock-step: +${CLOCK_STEP_S} s: ${expired} keys expired on the primary at once ` +
      `(expired_keys), ${tilted} of ${c.topology.boxes.length} sentinels in TILT; ` +
      `holder overlap ${overlap.join(" / ")} ms (${
        [...c.workload.contenders.keys()].join(" / ")
      }); ` +
      `${stale} stale writes rejected by fencing`,
  );
}

/** The faults of the environment. */
export const ENVIRONMENT_NEMESES: readonly Nemesis[] = [
  {
    name: "latency",
    summary: "20-100 ms of latency with jitter on every link (a delay proxy in each box), " +
      "and a kill -9 of the primary while it lasts",
    needs: { delayProxies: true },
    run: async (c) => {
      const window = await timed(c, "latency 20-100 ms", async () => {
        await c.topology.setLatency(20, 100);
        try {
          await delay(c.faultMs / 2);
          const box = await primaryBox(c);
          c.report(`chaos: kill -9 the primary (box ${box.index}) under latency`);
          await c.topology.signal(box, "redis", "KILL");
          await c.topology.waitAgreement(60_000, box.redis);
          await rejoin(c, box);
          await delay(c.faultMs / 2);
        } finally {
          await c.topology.setLatency(0, 0);
        }
      });
      const seen = outcomes(c, window, "WaitError");
      c.note(
        `latency: ${seen.ok} writes acknowledged under 20-100 ms each way, ` +
          `${seen.refused} WAIT timeouts, ${switchesIn(c, window)} Sentinel switch(es)`,
      );
    },
  },
  {
    name: "loss",
    summary: "random packet loss on every link: 5 %, then 20 %",
    run: async (c) => {
      for (const p of [0.05, 0.2]) {
        const from = c.history.now();
        await holdFault(
          c,
          `packet loss ${p * 100} %`,
          c.faultMs,
          () => c.topology.lossy(p),
          () => c.topology.heal(),
        );
        const window = { from, to: c.history.now() };
        const seen = outcomes(c, window);
        c.note(
          `loss ${p * 100} %: ${seen.ok} writes acknowledged in ${
            Math.round((window.to - window.from) / 1000)
          } s, ${switchesIn(c, window)} Sentinel switch(es)`,
        );
      }
    },
  },
  {
    name: "disk-full",
    summary: "the primary's data dir (a small tmpfs, AOF everysec) fills up, then space returns",
    needs: { tmpfsMb: 96 },
    run: async (c) => {
      const box = await primaryBox(c);
      const filler = `${box.dataDir}/filler`;
      const window = await timed(c, `disk full on box ${box.index}`, async () => {
        await fill(filler, (await c.topology.freeBytes(box)) - 64 * 1024);
        try {
          // The AOF takes the last bytes; from then on the primary refuses writes (MISCONF).
          await waitFor(async () => {
            const status = (await info(box, "persistence").catch(() => new Map())).get(
              "aof_last_write_status",
            );
            return status === "err"
              ? { done: true, value: undefined }
              : { done: false, observed: `aof_last_write_status ${status}` };
          }, { what: "the primary's AOF writes to fail", timeoutMs: 30_000, intervalMs: 100 });
          await delay(c.faultMs);
        } finally {
          await Deno.remove(filler).catch(() => {});
        }
      });
      await c.topology.waitAgreement(90_000);
      const seen = outcomes(c, window, "PersistenceError");
      const after = { from: window.from, to: c.history.now() };
      c.note(
        `disk-full: ${seen.refused} writes refused with PersistenceError (nothing written), ` +
          `${seen.ok} acknowledged while it lasted; Sentinel: ${
            switchesIn(c, after)
          } switch(es) during or after it (a node that cannot persist refuses PING: Sentinel ` +
          "sees it down after down-after-milliseconds)",
      );
    },
  },
  {
    name: "oom",
    summary: "the primary reaches maxmemory (noeviction) under load, then memory is freed",
    run: async (c) => {
      const box = await primaryBox(c);
      const window = await timed(c, `maxmemory on box ${box.index}`, async () => {
        await using conn = await RedisConnection.connect(box.redis);
        const used = Number((await info(box, "memory")).get("used_memory"));
        await conn.send(["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
        await conn.send(["CONFIG", "SET", "maxmemory", String(used + 4 * 1024 * 1024)]);
        // The runtime's state grows to the limit (here a filler does it at once).
        let fillers = 0;
        try {
          while (
            await conn.send(["SET", `chaos:filler:${fillers}`, "x".repeat(256 * 1024)]).then(
              () => true,
              () => false,
            )
          ) {
            fillers++;
          }
          // Past the limit for good while the fault lasts (deletes and expiries free a little).
          const full = Number((await info(box, "memory")).get("used_memory"));
          await conn.send(["CONFIG", "SET", "maxmemory", String(full - 1024 * 1024)]);
          await delay(c.faultMs);
        } finally {
          await conn.send(["CONFIG", "SET", "maxmemory", "0"]);
          for (let i = 0; i < fillers; i++) await conn.send(["DEL", `chaos:filler:${i}`]);
        }
      });
      const seen = outcomes(c, window, "OutOfMemoryError");
      c.note(
        `oom: ${seen.refused} writes refused with OutOfMemoryError (nothing written), ` +
          `${seen.ok} acknowledged (lease renewals and reads go on); ` +
          `Sentinel: ${switchesIn(c, window)} switch(es)`,
      );
    },
  },
  {
    name: "clock",
    summary: "a lease holder whose clock runs slow (0.95x, then 0.5x; an injected clock) " +
      "loses its renewals for longer than the TTL; then the servers' wall clock steps 5 s " +
      "forward and back (every lease key expires at once)",
    needs: { contenderUser: true },
    expects: { holderOverlap: true },
    run: async (c) => {
      const lease = "leader";
      const holder = CONTENDER_USER.holder;
      // Its renewals (and writes) are refused while its user may run nothing: a holder cut off
      // from the primary, the others not. Back after the TTL (3000 ms) plus 300 ms.
      const setUser = async (rules: string[]): Promise<void> => {
        for (const box of c.topology.boxes) {
          await using conn = await RedisConnection.connect(box.redis);
          await conn.send(["ACL", "SETUSER", CONTENDER_USER.name, ...rules]);
        }
      };
      try {
        for (const rate of [0.95, 0.5]) {
          c.workload.skewClock(holder, rate);
          // It keeps the lease once it has it (a skewed contender does not hand over).
          await waitFor(
            () =>
              c.workload.holds(holder)
                ? { done: true, value: undefined }
                : { done: false, observed: `${holder} does not hold ${lease}` },
            { what: `${holder} to hold the lease`, timeoutMs: 60_000, intervalMs: 50 },
          );
          const from = c.history.now();
          await holdFault(
            c,
            `clock x${rate}: ${holder} cut off for 3.3 s`,
            3300,
            () => setUser(["-@all"]),
            () => setUser(["+@all"]),
          );
          // Its belief ends at its own deadline (or at its next renewal, refused now).
          await waitFor(
            () =>
              c.workload.holds(holder)
                ? { done: false, observed: `${holder} still holds` }
                : { done: true, value: undefined },
            { what: `${holder} to give the lease up`, timeoutMs: 60_000, intervalMs: 50 },
          );
          c.workload.skewClock(holder, 1);
          // The holds that ended after the cut began, recorded once they end: the skewed
          // holder's (written after its last write returns) and the next holder's (it hands over).
          const holds = await waitFor(() => {
            const all = c.history.entries.filter((e): e is Hold =>
              e.type === "hold" && e.lease === lease && e.to >= from
            );
            return all.some((h) => h.holder === holder) && all.some((h) => h.holder !== holder)
              ? { done: true, value: all }
              : { done: false, observed: `${all.length} holds recorded` };
          }, { what: "the next holder to hand over", timeoutMs: 30_000, intervalMs: 50 });
          const stale = c.history.entries.filter((e): e is Op =>
            e.type === "op" && e.kind === "fenced" && e.holder === holder &&
            e.invokedAt >= from && e.error?.startsWith("FencedError") === true
          ).length;
          c.note(
            `clock x${rate}: holder overlap ${Math.round(holderOverlap(holds).maxMs)} ms ` +
              `(TTL 3000 ms; its renew deadline, 2000 ms on its clock, is ${
                Math.round(2000 / rate)
              } ms of true time; driftMs 300); ${stale} of its writes rejected by fencing`,
          );
        }
        await stepTheServersClock(c);
      } finally {
        c.workload.skewClock(holder, 1);
        await setUser(["+@all"]).catch(() => {});
      }
    },
  },
  {
    name: "box",
    summary: "the primary's whole box dies (its Redis and its Sentinel, kill -9 together)",
    run: async (c) => {
      const box = await primaryBox(c);
      await faultWindow(c, `box ${box.index} dies`, async () => {
        await c.topology.signal(box, "sentinel", "KILL");
        await c.topology.signal(box, "redis", "KILL");
        // The two other sentinels (quorum 2) fail over without the one that would have led.
        await c.topology.waitAgreement(60_000, box.redis);
      });
      await c.topology.restartSentinel(box);
      await rejoin(c, box);
    },
  },
  {
    name: "sentinel-cut",
    summary: "the clients lose every sentinel (the data path stays): once without a failover, " +
      "once while the primary is paused and replaced",
    run: async (c) => {
      const quiet = await timed(c, "clients cut from the sentinels", async () => {
        await c.topology.cutSentinelsFromClients();
        try {
          await delay(c.faultMs);
        } finally {
          await c.topology.heal();
        }
      });
      c.note(
        `sentinel-cut, no failover: ${
          outcomes(c, quiet).ok
        } writes acknowledged on the confirmed primary while the sentinels were unreachable`,
      );
      const box = await primaryBox(c);
      const others = c.topology.boxes.filter((b) => b !== box);
      const deposed = await timed(
        c,
        `clients cut from the sentinels; box ${box.index} paused and replaced`,
        async () => {
          await c.topology.cutSentinelsFromClients();
          try {
            await c.topology.signal(box, "redis", "STOP");
            // The sentinels (still reachable from the boxes) promote another node.
            await waitFor(async () => {
              const named = await c.topology.primaryNamedFrom(others[0]!);
              return named !== undefined && named !== formatEndpoint(box.redis)
                ? { done: true, value: undefined }
                : { done: false, observed: `sentinel names ${named}` };
            }, { what: "a failover away from the paused primary", timeoutMs: 60_000 });
            // The deposed primary comes back, still a master until Sentinel converts it.
            await c.topology.signal(box, "redis", "CONT");
            await delay(c.faultMs);
          } finally {
            await c.topology.signal(box, "redis", "CONT");
            await c.topology.heal();
          }
        },
      );
      await c.topology.waitAgreement(90_000);
      const seen = outcomes(c, deposed, "WaitError");
      c.note(
        `sentinel-cut with a failover: ${seen.ok} writes acknowledged, ${seen.refused} ` +
          "not confirmed (WaitError) while the clients could not ask the sentinels",
      );
    },
  },
  {
    name: "restart-all",
    summary: "every Redis and Sentinel on every box killed at once (kill -9), then restarted " +
      "from their files (AOF everysec)",
    expects: { lostAcknowledged: true },
    run: async (c) => {
      await faultWindow(c, "every process on every box killed", async () => {
        await Promise.all(c.topology.boxes.flatMap((b) => [
          c.topology.signal(b, "redis", "KILL"),
          c.topology.signal(b, "sentinel", "KILL"),
        ]));
        for (const box of c.topology.boxes) {
          await c.topology.restartRedis(box);
          await c.topology.restartSentinel(box);
        }
        await c.topology.waitAgreement(120_000);
      });
    },
  },
];
