#!/usr/bin/env -S deno run -P=chaos --v8-flags=--expose-gc
// deno-lint-ignore-file no-console -- a command-line program: progress on stderr, the verdict on stdout
/**
 * `deno task soak`: the fault suite's three boxes for a long while, a fault
 * every interval, and every process watched for what only shows over time:
 * memory that grows, file descriptors and connections that are not given
 * back (timers, listeners, sockets, queued promises).
 *
 *   deno task soak [--duration 30m] [--every 45s] [--clients N] [--out DIR]
 *
 * The chaos workload runs in this process (at a slower pace: its history is
 * spilled to disk), and N runtime-node clients (default 20) in worker
 * processes. Every `--every` one fault, rotating through kill, pause,
 * partition, leave, restart-replica and kill-sentinel. Every 5 s a sample:
 * RSS and heap (after a full GC) and open file descriptors and TCP
 * connections of every client process, and each node's `used_memory` and
 * `connected_clients` and each sentinel's `connected_clients`.
 *
 * Verdicts: the checker's zeros over the whole history; after a warm-up, RSS
 * and heap of each client process grow by at most 1 MB per 100 failovers
 * (least-squares slope); right before every fault file descriptors, TCP
 * connections and every `connected_clients` total are back at their
 * baseline (the fault waits up to 20 s for them to come back after the
 * previous one; a count still above it then is a leak). Writes
 * `report.json`, `report.md`, `soak.svg` and `history.jsonl` to the out dir.
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
import { check } from "./chaos/checker.ts";
import type { NemesisContext } from "./chaos/fault.ts";
import { finalState, settle } from "./chaos/final_state.ts";
import { History } from "./chaos/history.ts";
import { NEMESES } from "./chaos/nemesis.ts";
import { markSwitches } from "./chaos/switch_marks.ts";
import { watchWallClock } from "./chaos/wall_clock_watch.ts";
import { run, Topology } from "./chaos/topology.ts";
import { Workload, workloadConfig } from "./chaos/workload.ts";
import { HerdWorkerProcess } from "./bench/herd_worker_process.ts";
import { RedisConnection } from "../lib/protocol/connection.ts";
import type { Endpoint } from "../lib/protocol/endpoint.ts";
import { parseInfo } from "../lib/protocol/info.ts";
import { replyToString } from "../lib/protocol/resp.ts";
import { delay } from "../lib/common/delay.ts";
import { leakBaseline, leaksSince, type Sample, soakSvg, soakVerdicts } from "./soak/analysis.ts";

const say = (line: string): void => console.error(line);

/** The faults a soak rotates through, by nemesis name. */
export const SOAK_FAULTS = [
  "kill",
  "pause",
  "partition",
  "leave",
  "restart-replica",
  "kill-sentinel",
] as const;

/** Clients per worker process. */
const CLIENTS_PER_PROCESS = 50;
/** How often every process is sampled. */
const SAMPLE_EVERY_MS = 5000;
/** How long a fault waits for the counts to come back to their baseline before it goes on. */
const SETTLE_WAIT_MS = 20_000;

/** `30m`, `45s`, `1h`, `90` (seconds) → ms; a clear error otherwise. */
export function parseDurationFlag(
  value: string,
  flag: string,
  minMs: number,
  maxMs: number,
): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match?.[2] ?? "s"]!;
  const ms = match === null ? NaN : Number(match[1]) * unit;
  if (!Number.isFinite(ms) || ms < minMs || ms > maxMs) {
    throw new TaskUsageError(
      `${flag} is ${JSON.stringify(value)}; expected a duration like 45s, 30m or 2h ` +
        `between ${minMs / 1000} s and ${maxMs / 3_600_000} h`,
    );
  }
  return ms;
}

/** What `ss` counts per process: TCP connections by pid. */
async function tcpByPid(): Promise<Map<number, number>> {
  const r = await run("ss", ["-Htanp"]);
  const counts = new Map<number, number>();
  for (const m of r.stdout.matchAll(/pid=(\d+),/g)) {
    const pid = Number(m[1]);
    counts.set(pid, (counts.get(pid) ?? 0) + 1);
  }
  return counts;
}

/**
 * Open file descriptors of `pid` other than pipes (those of the commands the
 * soak itself runs while it samples, `ls` included, come and go).
 */
async function fds(pid: number): Promise<number> {
  const r = await run("ls", ["-l", `/proc/${pid}/fd`]);
  if (r.code !== 0) return NaN;
  return r.stdout.split("\n").filter((l) => / -> /.test(l) && !/ -> pipe:/.test(l)).length;
}

/** `INFO` fields of a node or sentinel (undefined while it is down or cut off). */
async function infoOf(
  endpoint: Endpoint,
  section: string,
): Promise<Map<string, string> | undefined> {
  try {
    await using conn = await RedisConnection.connect(endpoint, { connectTimeoutMs: 500 });
    return parseInfo(replyToString(await conn.send(["INFO", section], { timeoutMs: 500 })) ?? "");
  } catch {
    return undefined;
  }
}

/** The process's own memory after a full collection (the task runs with --expose-gc). */
function ownMemory(): { rss: number; heap: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = Deno.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

if (import.meta.main) {
  const options = withTaskUsage("soak", () => {
    const values = parseTaskFlags(Deno.args, {
      duration: { type: "string", default: "30m" },
      every: { type: "string", default: "45s" },
      clients: { type: "string", default: "20" },
      out: { type: "string" },
    });
    const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\.\d+Z$/, "Z");
    return {
      durationMs: parseDurationFlag(values.duration, "--duration", 60_000, 24 * 3_600_000),
      everyMs: parseDurationFlag(values.every, "--every", 10_000, 3_600_000),
      clients: intTaskFlag(values.clients, "--clients", 20, 1, 2000),
      out: checkOutDir(values.out ?? `bench/results/soak-${stamp}`, {
        allowed: ["./.tmp", "./bench"],
        set: "chaos",
        script: "scripts/soak.ts",
      }),
    };
  });
  await Deno.mkdir(options.out, { recursive: true });
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const signal = interrupt.signal;

  const samples: Sample[] = [];
  const faults: { name: string; from: number; to: number }[] = [];
  let error: string | undefined;
  let verdictText = "";
  {
    await using topology = await Topology.create(".tmp", say);
    const history = new History({ spill: `${options.out}/history.jsonl` });
    await using switches = markSwitches(topology, history);
    using wallClock = watchWallClock(() => history.now());
    const config = workloadConfig(topology.sentinels, topology.masterName, 1);
    const workload = await Workload.start(config, history, { pauseMs: 100 });
    const workers: HerdWorkerProcess[] = [];
    for (let first = 0; first < options.clients; first += CLIENTS_PER_PROCESS) {
      workers.push(
        new HerdWorkerProcess(
          {
            sentinels: topology.sentinels,
            master: topology.masterName,
            clients: Math.min(CLIENTS_PER_PROCESS, options.clients - first),
            first,
            namespace: `soak_${crypto.randomUUID().slice(0, 6)}`,
            contender: false,
          },
          signal,
          "chaos",
        ),
      );
    }
    const pids = new Map<string, number>([["workload", Deno.pid]]);
    try {
      for (const [i, w] of workers.entries()) {
        pids.set(`clients-${i + 1}`, (await w.next("loaded")).pid as number);
        await w.send("connect");
        await w.next("connected", 120_000);
      }
      say(
        `soak: ${options.clients} node clients in ${workers.length} process(es) and the workload up`,
      );

      // One sample at a time: the sampler's and the one before each fault would interleave their
      // requests to the worker processes and count each other's commands.
      let previous = Promise.resolve();
      const sample = (settled: boolean): Promise<Sample> => {
        const taken = previous.then(() => sampleNow(settled));
        previous = taken.then(() => {}, () => {});
        return taken;
      };
      const sampleNow = async (settled: boolean): Promise<Sample> => {
        const tcp = await tcpByPid();
        const memory = new Map<string, { rss: number; heap: number }>([["workload", ownMemory()]]);
        for (const [i, w] of workers.entries()) {
          await w.send("sample");
          const m = await w.next("sample");
          memory.set(`clients-${i + 1}`, { rss: m.rss as number, heap: m.heap as number });
        }
        const processes = [];
        for (const [name, pid] of pids) {
          const m = memory.get(name)!;
          processes.push({
            name,
            rssMb: m.rss / 1048576,
            heapMb: m.heap / 1048576,
            fds: await fds(pid),
            tcp: tcp.get(pid) ?? 0,
          });
        }
        const redis = [];
        const sentinels = [];
        for (const box of topology.boxes) {
          const r = await infoOf(box.redis, "all");
          redis.push({
            box: box.index,
            usedMemoryMb: r === undefined ? null : Number(r.get("used_memory")) / 1048576,
            connectedClients: r === undefined ? null : Number(r.get("connected_clients")),
          });
          const s = await infoOf(box.sentinel, "clients");
          sentinels.push({
            box: box.index,
            connectedClients: s === undefined ? null : Number(s.get("connected_clients")),
          });
        }
        const taken: Sample = {
          at: history.now(),
          failovers: switches.count(),
          settled,
          processes,
          redis,
          sentinels,
        };
        samples.push(taken);
        return taken;
      };

      // The sample right before a fault: taken again (every 500 ms) until its counts are back at
      // the baseline or SETTLE_WAIT_MS has passed; the analysis reports what stayed above it.
      const settledSample = async (): Promise<void> => {
        const base = leakBaseline(samples);
        const until = performance.now() + SETTLE_WAIT_MS;
        while (true) {
          const s = await sample(false);
          if (
            base === undefined || leaksSince(base, s).length === 0 || performance.now() >= until
          ) {
            samples[samples.indexOf(s)] = { ...s, settled: true };
            return;
          }
          await delay(500, signal);
        }
      };

      const end = performance.now() + options.durationMs;
      // The sampler: every 5 s, alongside the faults.
      const sampling = (async () => {
        while (!signal.aborted && performance.now() < end) {
          await sample(false).catch(() => {});
          await delay(SAMPLE_EVERY_MS, signal).catch(() => {});
        }
      })();
      const context: NemesisContext = {
        topology,
        history,
        faultMs: 3000,
        workload,
        report: say,
        note: (line) => say(`soak: ${line}`),
      };
      for (let k = 0; !signal.aborted && performance.now() + options.everyMs < end; k++) {
        await delay(options.everyMs, signal);
        // Right before each fault, the cluster has settled from the previous one.
        await settledSample();
        const name = SOAK_FAULTS[k % SOAK_FAULTS.length]!;
        const nemesis = NEMESES.find((n) => n.name === name)!;
        const from = history.now();
        say(
          `soak: fault ${k + 1} (${name}) at ${
            Math.round(from / 1000)
          } s, ${switches.count()} failovers so far`,
        );
        await nemesis.run(context);
        faults.push({ name, from, to: history.now() });
      }
      await sampling;
      signal.throwIfAborted();
      await settledSample();
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      say(`soak: ${error}`);
    } finally {
      await workload.stop();
      await Promise.all(workers.map((w) => w.close()));
    }
    const endAt = history.now();
    history.close();
    if (!signal.aborted) {
      await settle(topology);
      // Each box's Redis and Sentinel logs go with the report (what Sentinel decided, and when).
      for (const box of topology.boxes) {
        for (const log of ["redis-6379.log", "sentinel-26379.log"]) {
          await Deno.copyFile(`${box.dataDir}/${log}`, `${options.out}/box${box.index}-${log}`)
            .catch(() => {});
        }
      }
      const verdict = check(await history.all(), await finalState(config), endAt);
      const report = soakVerdicts(samples, verdict, {
        faults,
        durationMs: options.durationMs,
        everyMs: options.everyMs,
        clients: options.clients,
        clockSteps: wallClock.steps(),
        error,
      });
      await Deno.writeTextFile(
        `${options.out}/report.json`,
        JSON.stringify(
          {
            ...report,
            markdown: undefined,
            faultWindows: faults,
            switches: history.entries.filter((e) => e.type === "mark"),
            samples,
          },
          null,
          2,
        ) + "\n",
      );
      await Deno.writeTextFile(`${options.out}/report.md`, report.markdown);
      await Deno.writeTextFile(`${options.out}/soak.svg`, soakSvg(samples, faults));
      verdictText = report.markdown;
      if (!report.pass) error ??= "a verdict failed";
    }
  }
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  if (signal.aborted) {
    say("soak: interrupted; every process, namespace and temp dir it made is gone");
    Deno.exit(130);
  }
  console.log(verdictText);
  Deno.exit(error === undefined ? 0 : 1);
}
