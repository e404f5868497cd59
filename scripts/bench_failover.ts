#!/usr/bin/env -S deno run -P=bench-clients
// deno-lint-ignore-file no-console -- a benchmark program: printing its figures is its job
/**
 * `deno task bench:failover`: what a primary's death costs each client.
 *
 * Per cycle: 3 redis + 3 sentinels on loopback (down-after 1000 ms,
 * failover-timeout 5000 ms); one writer per client doing one durable write
 * (SET, then WAIT 1) every 10 ms — this library, ioredis and node-redis in
 * their Sentinel modes with default options, all at once on the same
 * cluster; kill -9 of the primary. Measured per client: t_switch (kill →
 * first `+switch-master`), t_recover (kill → first acknowledged write after
 * it), overhead = t_recover − t_switch, failed writes, acknowledged writes
 * missing afterwards; per cycle, spurious second failovers.
 *
 *   deno task bench:failover [--cycles N] [--fault kill|pause] [--out DIR]
 *
 * @module
 */

import {
  checkOutDir,
  intTaskFlag,
  parseTaskFlags,
  TaskUsageError,
  withTaskUsage,
} from "./_task_args.ts";
import { Redis } from "ioredis";
import { createSentinel } from "redis";
import { LocalCluster } from "../lib/process/local_cluster.ts";
import { RedisHaClient } from "../lib/ha/client.ts";
import { configFromOptions } from "../lib/ha/config.ts";
import { formatEndpoint } from "../lib/protocol/endpoint.ts";
import { SentinelWatcher } from "../lib/ha/sentinel_watcher.ts";
import { parseSwitchMaster } from "../lib/ha/resolver_decision.ts";
import { delay } from "../lib/common/delay.ts";

/** One client under test. */
interface Writer {
  readonly name: string;
  write(key: string): Promise<void>;
  close(): Promise<void>;
  /** What the client itself measured as failover unavailability (its metric), in ms. */
  measuredMs?: () => number | null;
}

interface Sample {
  at: number;
  latencyMs: number;
  ok: boolean;
  key: string;
}

const CLIENTS = ["mn-redis-ha", "ioredis", "node-redis"] as const;
type ClientName = typeof CLIENTS[number];

async function openWriter(name: ClientName, cluster: LocalCluster): Promise<Writer> {
  const sentinels = cluster.sentinelEndpoints;
  if (name === "mn-redis-ha") {
    const client = await RedisHaClient.connect(configFromOptions({
      haMode: "sentinel",
      sentinels: sentinels.map(formatEndpoint),
      sentinelMaster: cluster.masterName,
      waitReplicas: 1,
      waitTimeoutMs: 100,
    }));
    return {
      name,
      write: async (key) => {
        await client.durable(["SET", key, "1"], { idempotent: true });
      },
      close: () => client.close(),
      measuredMs: () => {
        const text = client.renderMetrics();
        const count = /^mn_redis_ha_failover_unavailability_seconds_count (\S+)$/m.exec(text);
        const sum = /^mn_redis_ha_failover_unavailability_seconds_sum (\S+)$/m.exec(text);
        return count === null || Number(count[1]) === 0 ? null : Math.round(Number(sum![1]) * 1000);
      },
    };
  }
  if (name === "ioredis") {
    const redis = new Redis({
      sentinels: sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: cluster.masterName,
      lazyConnect: true,
    });
    redis.on("error", () => {}); // reconnect noise; failures surface on the writes
    await redis.connect();
    return {
      name,
      write: async (key) => {
        await redis.set(key, "1");
        const acked = await redis.call("WAIT", "1", "100") as number;
        if (acked < 1) throw new Error(`WAIT: ${acked} of 1 replicas`);
      },
      close: () => {
        redis.disconnect();
        return Promise.resolve();
      },
    };
  }
  const sentinel = createSentinel({
    name: cluster.masterName,
    sentinelRootNodes: sentinels.map((s) => ({ host: s.host, port: s.port })),
  });
  sentinel.on("error", () => {});
  await sentinel.connect();
  return {
    name,
    write: async (key) => {
      await sentinel.set(key, "1");
      // RedisSentinel.sendCommand(isReadonly, args): WAIT goes to the primary.
      const acked = Number(await sentinel.sendCommand(false, ["WAIT", "1", "100"]));
      if (acked < 1) throw new Error(`WAIT: ${acked} of 1 replicas`);
    },
    close: async () => {
      await sentinel.close().catch(() => {});
    },
  };
}

/** One writer doing a write every 10 ms (or right after the previous one, if it took longer). */
function writeLoop(writer: Writer, prefix: string, origin: number, stop: AbortSignal): {
  samples: Sample[];
  done: Promise<void>;
} {
  const samples: Sample[] = [];
  const done = (async () => {
    let n = 0;
    while (!stop.aborted) {
      const key = `${prefix}:${n++}`;
      const started = performance.now();
      let ok = true;
      try {
        // A write that never settles must not hold the benchmark: give up on it after 30 s.
        await Promise.race([
          writer.write(key),
          delay(30_000, stop).then(() => Promise.reject(new Error("no answer in 30 s"))),
        ]);
      } catch {
        ok = false;
      }
      const ended = performance.now();
      samples.push({ at: ended - origin, latencyMs: ended - started, ok, key });
      await delay(Math.max(0, 10 - (ended - started)), stop).catch(() => {});
    }
  })();
  return { samples, done };
}

interface ClientCycle {
  client: ClientName;
  recoverMs: number | null;
  overheadMs: number | null;
  failed: number;
  acked: number;
  lostAcked: number;
  /** mn-redis-ha only: the unavailability its own metric measured. */
  measuredMs: number | null;
}

interface Cycle {
  cycle: number;
  switchMs: number | null;
  spuriousFailovers: number;
  clients: ClientCycle[];
  samples: Record<string, Sample[]>;
}

async function runCycle(
  cycle: number,
  order: readonly ClientName[],
  fault: "kill" | "pause",
): Promise<Cycle> {
  await using cluster = await LocalCluster.start({
    baseDir: ".tmp",
    replicas: 2,
    sentinels: 3,
    downAfterMs: 1000,
    failoverTimeoutMs: 5000,
  });
  const origin = performance.now();
  const switches: { at: number; to: string }[] = [];
  await using _watcher = new SentinelWatcher({
    sentinels: () => cluster.sentinelEndpoints,
    masterName: cluster.masterName,
    subscriptions: 3,
    onEvent: (e) => {
      if (e.channel !== "+switch-master") return;
      const to = parseSwitchMaster(e.payload);
      switches.push({ at: performance.now() - origin, to: to ? formatEndpoint(to.to) : "?" });
    },
  });
  const writers: Writer[] = [];
  for (const name of order) writers.push(await openWriter(name, cluster));
  const stop = new AbortController();
  const loops = writers.map((w) => writeLoop(w, `${w.name}:${cycle}`, origin, stop.signal));
  let killedAt = 0;
  const measured = new Map<string, number | null>();
  const primary = cluster.nodes[0]!;
  try {
    await delay(1500);
    killedAt = performance.now() - origin;
    if (fault === "pause") {
      primary.kill("SIGSTOP");
    } else {
      primary.kill("SIGKILL");
      await primary.waitExit();
    }
    await cluster.waitForAgreement({ excluding: primary.endpoint, timeoutMs: 60_000 });
    // Let every client recover (or not), and catch a spurious second failover.
    await delay(5000);
  } finally {
    stop.abort();
    await Promise.all(loops.map((l) => l.done));
    for (const w of writers) measured.set(w.name, w.measuredMs?.() ?? null);
    await Promise.all(writers.map((w) => w.close().catch(() => {})));
    // A paused primary resumes and is demoted; its writes since the pause are then discarded.
    if (fault === "pause") primary.kill("SIGCONT");
  }
  const final = cluster.node(await cluster.waitForAgreement({ timeoutMs: 60_000 }));
  await using conn = await final.connect();
  const firstSwitch = switches.length === 0 ? null : Math.min(...switches.map((s) => s.at));
  const targets = new Set(switches.map((s) => s.to));
  const clients: ClientCycle[] = [];
  for (const [i, w] of writers.entries()) {
    const samples = loops[i]!.samples;
    const acked = samples.filter((s) => s.ok);
    // A reply 50 ms after the kill cannot come from the dead primary.
    const after = acked.filter((s) => s.at > killedAt + 50);
    // A fold, not Math.min(...): a cycle's samples can outnumber what the call stack takes.
    const recover = after.length === 0
      ? null
      : after.reduce((first, s) => Math.min(first, s.at), Infinity) - killedAt;
    let lostAcked = 0;
    for (let k = 0; k < acked.length; k += 500) {
      const batch = acked.slice(k, k + 500).map((s) => s.key);
      lostAcked += batch.length - Number(await conn.send(["EXISTS", ...batch]));
    }
    clients.push({
      client: w.name as ClientName,
      recoverMs: recover === null ? null : Math.round(recover),
      overheadMs: recover === null || firstSwitch === null
        ? null
        : Math.round(recover - (firstSwitch - killedAt)),
      failed: samples.filter((s) => !s.ok).length,
      acked: acked.length,
      lostAcked,
      measuredMs: measured.get(w.name) ?? null,
    });
  }
  const samples: Record<string, Sample[]> = {};
  for (const [i, w] of writers.entries()) {
    samples[w.name] = loops[i]!.samples.map((s) => ({ ...s, at: s.at - killedAt }));
  }
  return {
    cycle,
    switchMs: firstSwitch === null ? null : Math.round(firstSwitch - killedAt),
    spuriousFailovers: Math.max(0, targets.size - 1),
    clients,
    samples,
  };
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

/** Per client, write latency over time around the kill, in one cycle. */
function latencySvg(cycle: Cycle): string {
  const width = 900;
  const panel = 120;
  const left = 60;
  const from = -1000;
  const to = 6000;
  const x = (ms: number): number => left + ((ms - from) / (to - from)) * (width - left - 10);
  const y = (latency: number, top: number): number =>
    top + panel - 10 - (Math.log10(Math.max(0.1, latency) * 10) / 5) * (panel - 20);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${
      CLIENTS.length * panel + 50
    }" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="16" font-size="13">Durable write latency around kill -9 of the primary (cycle ${cycle.cycle}; log scale 0.1 ms – 10 s)</text>`,
  ];
  CLIENTS.forEach((name, i) => {
    const top = 24 + i * panel;
    parts.push(
      `<text x="4" y="${top + panel / 2}">${name}</text>`,
      `<line x1="${x(0)}" x2="${x(0)}" y1="${top}" y2="${top + panel - 10}" stroke="#d93025"/>`,
    );
    if (cycle.switchMs !== null) {
      parts.push(
        `<line x1="${x(cycle.switchMs)}" x2="${x(cycle.switchMs)}" y1="${top}" y2="${
          top + panel - 10
        }" stroke="#1a73e8" stroke-dasharray="4 3"/>`,
      );
    }
    for (const s of cycle.samples[name] ?? []) {
      if (s.at < from || s.at > to) continue;
      parts.push(
        `<circle cx="${x(s.at).toFixed(1)}" cy="${y(s.latencyMs, top).toFixed(1)}" r="1.5" fill="${
          s.ok ? "#34a853" : "#d93025"
        }"/>`,
      );
    }
  });
  parts.push(
    `<text x="${left}" y="${
      CLIENTS.length * panel + 40
    }">x: ms from the kill (red line) · dashed blue: first +switch-master · green: acknowledged · red: failed</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

if (import.meta.main) {
  const { fault, cycles, out } = withTaskUsage("bench:failover", () => {
    const values = parseTaskFlags(Deno.args, {
      cycles: { type: "string", default: "5" },
      out: { type: "string" },
      fault: { type: "string", default: "kill" },
    });
    const fault = values.fault;
    if (fault !== "kill" && fault !== "pause") {
      throw new TaskUsageError(`--fault is ${JSON.stringify(fault)}; expected kill or pause`);
    }
    return {
      fault: fault as "kill" | "pause",
      cycles: intTaskFlag(values.cycles, "--cycles", 5, 1, 100),
      out: checkOutDir(
        values.out ?? `bench/results/failover-${new Date().toISOString().slice(0, 10)}`,
        {
          allowed: ["./.tmp", "./bench"],
          set: "bench-clients",
          script: "scripts/bench_failover.ts",
        },
      ),
    };
  });
  await Deno.mkdir(out, { recursive: true });
  const results: Cycle[] = [];
  for (let c = 1; c <= cycles; c++) {
    // Rotate who connects first, so no client is always first in line.
    const order = [...CLIENTS.slice(c % 3), ...CLIENTS.slice(0, c % 3)];
    const result = await runCycle(c, order, fault);
    results.push(result);
    console.error(
      `cycle ${c}: switch ${result.switchMs} ms; ` +
        result.clients.map((r) =>
          `${r.client} recover ${r.recoverMs} ms (overhead ${r.overheadMs}${
            r.measuredMs === null ? "" : `, its own metric ${r.measuredMs} ms`
          }), failed ${r.failed}, lost ${r.lostAcked}`
        ).join("; ") + (result.spuriousFailovers > 0 ? "; spurious second failover" : ""),
    );
  }
  const perClient = Object.fromEntries(CLIENTS.map((name) => {
    const rows = results.flatMap((r) => r.clients.filter((x) => x.client === name));
    return [name, {
      medianRecoverMs: median(rows.flatMap((r) => r.recoverMs === null ? [] : [r.recoverMs])),
      medianOverheadMs: median(rows.flatMap((r) => r.overheadMs === null ? [] : [r.overheadMs])),
      failedWrites: rows.reduce((n, r) => n + r.failed, 0),
      lostAcknowledgedWrites: rows.reduce((n, r) => n + r.lostAcked, 0),
      cyclesWithoutRecovery: rows.filter((r) => r.recoverMs === null).length,
      medianOwnMetricMs: median(rows.flatMap((r) => r.measuredMs === null ? [] : [r.measuredMs])),
    }];
  }));
  const report = {
    fault,
    cycles,
    medianSwitchMs: median(results.flatMap((r) => r.switchMs === null ? [] : [r.switchMs])),
    spuriousFailovers: results.reduce((n, r) => n + r.spuriousFailovers, 0),
    clients: perClient,
    rows: results.map(({ samples: _s, ...row }) => row),
  };
  await Deno.writeTextFile(`${out}/failover.json`, JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(`${out}/failover.svg`, latencySvg(results[results.length - 1]!));
  const table = [
    `Failover cost over ${cycles} cycles (median t_switch ${report.medianSwitchMs} ms, spurious second failovers ${report.spuriousFailovers}):`,
    "",
    "| client | median t_recover ms | median overhead ms | failed writes | acknowledged then lost |",
    "| --- | --- | --- | --- | --- |",
    ...CLIENTS.map((name) => {
      const c = perClient[name];
      return `| ${name} | ${c!.medianRecoverMs} | ${c!.medianOverheadMs} | ${c!.failedWrites} | ${
        c!.lostAcknowledgedWrites
      } |`;
    }),
  ].join("\n");
  await Deno.writeTextFile(`${out}/failover.md`, table + "\n");
  console.log(table);
  console.log(`\nwritten: ${out}/failover.json, failover.md, failover.svg`);
}
