#!/usr/bin/env -S deno run -P=bench --v8-flags=--expose-gc
// deno-lint-ignore-file no-console -- a command-line program: progress on stderr, the verdict on stdout
/**
 * `deno task soak:memory`: does a process of runtime-node clients keep flat
 * memory across many failovers? The soak (`scripts/soak.ts`) sees a few
 * dozen failovers in half an hour, too few to tell a leak from V8 compiling
 * what a failover runs; this run makes many, fast.
 *
 * One loopback cluster (3 redis, 3 sentinels, quorum 2, down-after 1000 ms);
 * `--clients` state stores in this process, each appending one durable event
 * every 100 ms; then `--failovers` times: once the sentinels agree and the
 * replicas are in sync, `SENTINEL FAILOVER`; once every client has written
 * again after it, the heap and RSS after a full GC. Reports the growth per
 * 100 failovers (least-squares slope) from the 3rd, the 20th and over the
 * second half, and judges the second half: at most 1 MB each.
 *
 *   deno task soak:memory [--failovers 100] [--clients 20] [--out DIR]
 *
 * Writes `<out>/memory.json` and `<out>/memory.md`. Ctrl-C stops it, cluster
 * and temp dir included (exit 130).
 *
 * @module
 */

import { checkOutDir, intTaskFlag, parseTaskFlags, withTaskUsage } from "./_task_args.ts";
import { slope } from "./soak/analysis.ts";
import { LocalCluster } from "../lib/process/local_cluster.ts";
import { configFromOptions } from "../lib/ha/config.ts";
import { StateStore } from "../lib/state/state_store.ts";
import { formatEndpoint } from "../lib/protocol/endpoint.ts";
import { delay } from "../lib/common/delay.ts";
import { waitFor } from "../lib/common/wait_for.ts";

/** The bound on growth per 100 failovers, MB, judged over the second half. */
const MB_PER_100_FAILOVERS = 1;

/** Memory after a full collection, at one failover. */
export interface MemorySample {
  /** The failover's number (1-based). */
  readonly failover: number;
  readonly heapMb: number;
  readonly rssMb: number;
}

/** Growth per 100 failovers of heap and RSS over the samples from failover `from` on. */
export interface MemoryGrowth {
  readonly from: number;
  readonly heapMbPer100: number | null;
  readonly rssMbPer100: number | null;
}

/** The growth from the 3rd, the 20th and the middle failover on, and the verdict on the last. */
export function memoryGrowth(samples: readonly MemorySample[]): {
  growth: MemoryGrowth[];
  pass: boolean | null;
} {
  const last = samples.at(-1)?.failover ?? 0;
  const froms = [...new Set([3, 20, Math.max(3, Math.floor(last / 2))])].filter((f) =>
    f < last - 1
  );
  const growth = froms.map((from) => {
    const tail = samples.filter((s) => s.failover >= from);
    const per = (key: "heapMb" | "rssMb"): number | null => {
      const k = slope(tail.map((s) => ({ x: s.failover, y: s[key] })));
      return k === undefined ? null : Math.round(k * 100 * 1000) / 1000;
    };
    return { from, heapMbPer100: per("heapMb"), rssMbPer100: per("rssMb") };
  });
  const judged = growth.at(-1);
  const pass = judged === undefined || judged.heapMbPer100 === null ||
      judged.rssMbPer100 === null
    ? null
    : judged.heapMbPer100 <= MB_PER_100_FAILOVERS && judged.rssMbPer100 <= MB_PER_100_FAILOVERS;
  return { growth, pass };
}

function markdown(
  samples: readonly MemorySample[],
  clients: number,
  result: ReturnType<typeof memoryGrowth>,
): string {
  const first = samples[0];
  const last = samples.at(-1);
  const fmt = (n: number | null): string => n === null ? "—" : `${n} MB`;
  return [
    `# Memory across failovers: ${clients} clients in one process, ${samples.length} failovers`,
    "",
    first === undefined || last === undefined
      ? "No failover completed."
      : `Heap ${first.heapMb.toFixed(2)} → ${last.heapMb.toFixed(2)} MB, RSS ${
        first.rssMb.toFixed(1)
      } → ${last.rssMb.toFixed(1)} MB (after a full GC, from the 1st failover to the last).`,
    "",
    "| from failover | heap growth per 100 failovers | RSS growth per 100 failovers |",
    "| --- | --- | --- |",
    ...result.growth.map((g) => `| ${g.from} | ${fmt(g.heapMbPer100)} | ${fmt(g.rssMbPer100)} |`),
    "",
    `Verdict (the last row, ≤ ${MB_PER_100_FAILOVERS} MB each): ${
      result.pass === null ? "not judged (too few failovers)" : result.pass ? "PASS" : "FAIL"
    }`,
    "",
  ].join("\n");
}

/** Full collections until the heap settles, then heap and RSS in MB. */
function memoryNow(): { heapMb: number; rssMb: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = Deno.memoryUsage();
  return { heapMb: m.heapUsed / 1048576, rssMb: m.rss / 1048576 };
}

async function run(
  options: { failovers: number; clients: number },
  signal: AbortSignal,
  onSample: (s: MemorySample) => void,
): Promise<void> {
  await using cluster = await LocalCluster.start({
    baseDir: ".tmp",
    replicas: 2,
    sentinels: 3,
    quorum: 2,
    downAfterMs: 1000,
    failoverTimeoutMs: 3000,
    signal,
  });
  const config = configFromOptions({
    haMode: "sentinel",
    sentinels: cluster.sentinelEndpoints.map(formatEndpoint).join(","),
    sentinelMaster: cluster.masterName,
    waitReplicas: 1,
    waitTimeoutMs: 500,
    namespace: "soak_memory",
  });
  const stores: StateStore[] = [];
  try {
    for (let i = 0; i < options.clients; i++) stores.push(await StateStore.connect(config));
    const lastAck = stores.map(() => 0);
    const stopping = new AbortController();
    const loops = stores.map(async (store, i) => {
      for (let n = 0; !stopping.signal.aborted; n++) {
        await store.events.append(`job-${i}`, { id: `e${n}`, type: "tick" }).then(
          () => lastAck[i] = performance.now(),
          () => {}, // failures around a failover are expected; only the next success counts
        );
        await delay(100, stopping.signal).catch(() => {});
      }
    });
    try {
      for (let k = 1; k <= options.failovers && !signal.aborted; k++) {
        const primary = await cluster.waitForAgreement({ timeoutMs: 60_000, signal });
        await cluster.waitReplicasInSync(primary, 30_000);
        // Sentinel refuses a failover now and then (NOGOODSLAVE, INPROG): ask until it starts.
        await waitFor(async () => {
          await using s = await cluster.sentinels[k % cluster.sentinels.length]!.connect();
          await s.send(["SENTINEL", "FAILOVER", cluster.masterName]);
          return { done: true, value: undefined };
        }, { what: "Sentinel to start a failover", timeoutMs: 30_000, intervalMs: 200, signal });
        await cluster.waitForAgreement({ excluding: primary, timeoutMs: 60_000, signal });
        const switched = performance.now();
        await waitFor(
          () =>
            lastAck.every((t) => t > switched) ? { done: true, value: undefined } : {
              done: false,
              observed: `${lastAck.filter((t) => t <= switched).length} clients not yet`,
            },
          { what: "every client to write after the failover", timeoutMs: 60_000, signal },
        );
        onSample({ failover: k, ...memoryNow() });
      }
    } finally {
      stopping.abort();
      await Promise.all(loops);
    }
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

if (import.meta.main) {
  const options = withTaskUsage("soak:memory", () => {
    const values = parseTaskFlags(Deno.args, {
      failovers: { type: "string", default: "100" },
      clients: { type: "string", default: "20" },
      out: { type: "string" },
    });
    return {
      failovers: intTaskFlag(values.failovers, "--failovers", 100, 2, 10_000),
      clients: intTaskFlag(values.clients, "--clients", 20, 1, 500),
      out: checkOutDir(
        values.out ?? `bench/results/soak-memory-${new Date().toISOString().slice(0, 10)}`,
        { allowed: ["./.tmp", "./bench"], set: "bench", script: "scripts/soak_memory.ts" },
      ),
    };
  });
  await Deno.mkdir(options.out, { recursive: true });
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const samples: MemorySample[] = [];
  let error: string | undefined;
  await run(options, interrupt.signal, (s) => {
    samples.push(s);
    console.error(
      `soak:memory: failover ${s.failover}: heap ${s.heapMb.toFixed(2)} MB, RSS ${
        s.rssMb.toFixed(1)
      } MB`,
    );
  }).catch((e) => {
    if (!interrupt.signal.aborted) error = e instanceof Error ? e.message : String(e);
  });
  if (interrupt.signal.aborted) {
    console.error("soak:memory: interrupted; the cluster and its temp dir are gone");
    Deno.exit(130);
  }
  const result = memoryGrowth(samples);
  await Deno.writeTextFile(
    `${options.out}/memory.json`,
    JSON.stringify({ clients: options.clients, samples, ...result, error }, null, 2) + "\n",
  );
  const text = markdown(samples, options.clients, result);
  await Deno.writeTextFile(`${options.out}/memory.md`, text);
  console.log(text);
  if (error !== undefined) {
    console.error(`soak:memory: ${error}`);
    Deno.exit(1);
  }
  if (result.pass === false) Deno.exit(1);
}
