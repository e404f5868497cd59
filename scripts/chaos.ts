#!/usr/bin/env -S deno run -P=chaos
// deno-lint-ignore-file no-console -- a command-line program: progress on stderr, the summary on stdout
/**
 * `deno task chaos`: Jepsen-style fault runs on three network-namespace
 * boxes, each run with a history checker and a report.
 *
 *   deno task chaos [--nemesis NAME[,NAME…]|all|mixed] [--duration S] [--wait N] [--out DIR] [--short]
 *
 * Needs root (network namespaces, iptables). Every process, namespace and
 * link of a run is removed on success, failure and Ctrl-C.
 *
 * @module
 */

import { checkOutDir, parseTaskFlags, TaskUsageError, withTaskUsage } from "./_task_args.ts";
import { check } from "./chaos/checker.ts";
import { History, type Mark } from "./chaos/history.ts";
import { NEMESES, type Nemesis, selectNemeses } from "./chaos/nemesis.ts";
import type { RunNeeds } from "./chaos/fault.ts";
import { finalState, settle } from "./chaos/final_state.ts";
import { describeClockSteps, watchWallClock } from "./chaos/wall_clock_watch.ts";
import { markSwitches } from "./chaos/switch_marks.ts";
import { Secret } from "../lib/common/secret.ts";
import {
  reportMarkdown,
  runFailed,
  type RunReport,
  summaryMarkdown,
  timelineSvg,
} from "./chaos/report.ts";
import { Topology } from "./chaos/topology.ts";
import { CONTENDER_USER, Workload, workloadConfig } from "./chaos/workload.ts";
import { ReplicaReaders } from "./chaos/replica_readers.ts";
import { RedisConnection } from "../lib/protocol/connection.ts";
import { delay } from "../lib/common/delay.ts";

const say = (line: string): void => console.error(line);

/** Where the `chaos` permission set may write. */
const WRITABLE = ["./.tmp", "./bench"];

interface Options {
  nemeses: Nemesis[][];
  durationMs: number;
  wait: number;
  out: string;
}

function parseOptions(args: string[]): Options {
  const values = parseTaskFlags(args, {
    nemesis: { type: "string", default: "all" },
    duration: { type: "string" },
    wait: { type: "string", default: "1" },
    out: { type: "string" },
    short: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(
      "Usage: deno task chaos [--nemesis NAME[,NAME…]|all|mixed] [--duration S] [--wait N] [--out DIR] [--short]\n\n" +
        "Nemeses:\n" + NEMESES.map((n) => `  ${n.name.padEnd(18)} ${n.summary}`).join("\n") +
        "\n  mixed              every nemesis above, one after another, in one run\n\n" +
        "--duration S   seconds of workload around each fault (default 20; --short: 6)\n" +
        "--wait N       MN_REDIS_WAIT_REPLICAS of the writers (default 1; 0 for comparison)\n" +
        "--out DIR      where reports go (default bench/results/chaos/<timestamp>)\n" +
        "--short        one cycle of each nemesis with short durations (what CI runs)",
    );
    Deno.exit(0);
  }
  const value = values.nemesis;
  let nemeses: Nemesis[][];
  if (value === "mixed") nemeses = [[...NEMESES]];
  else {
    const picked = selectNemeses(value);
    if (typeof picked === "string") throw new TaskUsageError(`--nemesis: ${picked}`);
    nemeses = picked.map((n) => [n]);
  }
  const seconds = values.duration === undefined ? (values.short ? 6 : 20) : Number(values.duration);
  if (!Number.isFinite(seconds) || seconds < 2 || seconds > 3600) {
    throw new TaskUsageError(
      `--duration is ${JSON.stringify(values.duration)}; expected seconds in 2-3600`,
    );
  }
  const wait = Number(values.wait);
  if (!Number.isInteger(wait) || wait < 0 || wait > 2) {
    throw new TaskUsageError(`--wait is ${JSON.stringify(values.wait)}; expected 0, 1 or 2`);
  }
  const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\.\d+Z$/, "Z");
  return {
    nemeses,
    durationMs: seconds * 1000,
    wait,
    out: checkOutDir(values.out ?? `bench/results/chaos/${stamp}`, {
      allowed: WRITABLE,
      set: "chaos",
      script: "scripts/chaos.ts",
    }),
  };
}

/**
 * Which acknowledged writes a fault that may lose them (a power loss) lost:
 * how many, and how long before the fault began they were acknowledged.
 */
function lostBeforeFault(
  history: History,
  verdict: { acked: number; findings: readonly { kind: string; id: string }[] },
): string {
  const fault = history.entries.find((e): e is Mark => e.type === "mark" && e.what === "fault");
  const lostIds = new Set(verdict.findings.filter((f) => f.kind === "lost").map((f) => f.id));
  const ackedAt = history.entries.flatMap((e) =>
    e.type === "op" && e.outcome === "ok" && lostIds.has(`${e.kind} ${e.id}`) &&
      e.completedAt !== undefined
      ? [e.completedAt]
      : []
  );
  if (fault === undefined || ackedAt.length === 0) {
    return `${lostIds.size} acknowledged writes lost`;
  }
  const before = ackedAt.map((t) => Math.round(fault.from - t));
  return `${ackedAt.length} acknowledged writes lost, all acknowledged between ${
    Math.min(...before)
  } and ${Math.max(...before)} ms before the fault (what the AOF had not yet written to disk ` +
    "on every node: appendfsync everysec)";
}

/** Creates the ACL user one contender logs in as, on every box; returns its password. */
async function contenderUser(topology: Topology): Promise<Secret> {
  const password = new Secret(crypto.randomUUID());
  for (const box of topology.boxes) {
    await using conn = await RedisConnection.connect(box.redis);
    await conn.send([
      "ACL",
      "SETUSER",
      CONTENDER_USER.name,
      "on",
      `>${password.reveal()}`,
      "~*",
      "&*",
      "+@all",
    ]);
  }
  return password;
}

async function runOne(
  nemeses: Nemesis[],
  options: Options,
  signal: AbortSignal,
): Promise<RunReport> {
  const name = nemeses.length === 1 ? nemeses[0]!.name : "mixed";
  const dir = `${options.out}/${name}-wait${options.wait}`;
  await Deno.mkdir(dir, { recursive: true });
  say(`chaos: run ${name} (WAIT ${options.wait}) → ${dir}`);
  const started = performance.now();
  // The boxes a run's faults need: a delay proxy (latency), a small disk (disk-full).
  const needs: RunNeeds = nemeses.reduce((all, n) => ({ ...all, ...n.needs }), {});
  const expected = {
    lostAcknowledged: nemeses.some((n) => n.expects?.lostAcknowledged === true),
    holderOverlap: nemeses.some((n) => n.expects?.holderOverlap === true),
  };
  const notes: string[] = [];
  await using topology = await Topology.create(".tmp", say, needs);
  const history = new History();
  const config = workloadConfig(topology.sentinels, topology.masterName, options.wait);
  await using switchMarks = markSwitches(topology, history);
  // A step of the wall clock shortens every lease on the servers (Redis expiry follows it).
  using wallClock = watchWallClock(() => history.now());
  const contenderPassword = needs.contenderUser === true
    ? await contenderUser(topology)
    : undefined;
  const workload = await Workload.start(config, history, { contenderPassword });
  // Replica readers (replica-preferred, 100 ms bound) beside the workload, judged by their checker.
  const readers = await ReplicaReaders.start(config, { writers: 2, maxLagMs: 100, pauseMs: 5 })
    .catch(async (e) => {
      await workload.stop();
      throw e;
    });
  let error: string | undefined;
  let end = 0;
  try {
    await delay(Math.min(3000, options.durationMs / 3), signal);
    for (const nemesis of nemeses) {
      signal.throwIfAborted();
      say(`chaos: nemesis ${nemesis.name}: ${nemesis.summary}`);
      await nemesis.run({
        topology,
        history,
        faultMs: options.durationMs / 3,
        workload,
        report: say,
        note: (line) => {
          notes.push(line);
          say(`chaos: ${line}`);
        },
      });
    }
    await delay(Math.min(5000, options.durationMs / 3), signal);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    say(`chaos: ${name}: ${error}`);
  } finally {
    end = history.now();
    await Promise.all([workload.stop(), readers.stop()]);
  }
  if (wallClock.steps().length > 0) notes.push(describeClockSteps(wallClock.steps()));
  const readVerdict = readers.verdict();
  const replicaReads = {
    reads: readVerdict.reads,
    byReplica: readVerdict.byReplica,
    stale: readVerdict.stale,
    readYourWrites: readVerdict.readYourWrites,
  };
  for (const v of readVerdict.examples.slice(0, 5)) {
    notes.push(
      `replica read ${v.kind}: ${v.read.client} read ${v.read.key} = ${v.read.version} from ${v.read.servedBy} ${v.read.node} at ${
        Math.round(v.read.issuedAt)
      } ms, ${v.required} required`,
    );
  }
  let verdictError = error;
  let report: RunReport;
  try {
    // Ctrl-C: no waiting for a resync; the topology is torn down at once.
    signal.throwIfAborted();
    await settle(topology);
    const state = await finalState(config);
    const verdict = check(history.entries, state, end);
    if (expected.lostAcknowledged) notes.push(lostBeforeFault(history, verdict));
    report = {
      nemesis: name,
      wait: options.wait,
      durationMs: performance.now() - started,
      switches: switchMarks.count(),
      notes,
      expected,
      ...verdict,
      replicaReads,
      ...(verdictError === undefined ? {} : { error: verdictError }),
    };
  } catch (e) {
    verdictError = `${verdictError === undefined ? "" : `${verdictError}; `}check failed: ${
      e instanceof Error ? e.message : e
    }`;
    report = {
      nemesis: name,
      wait: options.wait,
      durationMs: performance.now() - started,
      switches: switchMarks.count(),
      notes,
      expected,
      ...check(history.entries, {
        setKeys: new Set(),
        listValues: [],
        eventIds: new Map(),
        fenced: new Map(),
      }, end),
      lost: 0,
      duplicated: 0,
      replicaReads,
      error: verdictError,
    };
  }
  // Each box's Redis and Sentinel logs go with the report (what Sentinel decided, and when).
  for (const box of topology.boxes) {
    for (const log of ["redis-6379.log", "sentinel-26379.log"]) {
      await Deno.copyFile(`${box.dataDir}/${log}`, `${dir}/box${box.index}-${log}`).catch(() => {});
    }
  }
  await Deno.writeTextFile(`${dir}/history.jsonl`, history.toJsonl());
  await Deno.writeTextFile(`${dir}/report.json`, JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}/report.md`, reportMarkdown(report));
  await Deno.writeTextFile(
    `${dir}/timeline.svg`,
    timelineSvg(
      history.entries,
      `${name}, WAIT ${options.wait}`,
      end,
      new Set(report.findings.filter((f) => f.kind === "lost").map((f) => f.id)),
    ),
  );
  say(
    `chaos: ${name}: acked ${report.acked}/${report.invoked}, lost ${report.lost}, duplicated ${report.duplicated}, unknown ${report.unknown}, fencing ${report.fencingViolations}, overlap ${report.holderOverlapMs} ms, longest unavailable ${report.longestUnavailableMs} ms, replica reads ${replicaReads.byReplica}/${replicaReads.reads} (stale ${replicaReads.stale}, own write missed ${replicaReads.readYourWrites})`,
  );
  return report;
}

if (import.meta.main) {
  const options = withTaskUsage("chaos", () => parseOptions(Deno.args));
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const reports: RunReport[] = [];
  for (const nemeses of options.nemeses) {
    if (interrupt.signal.aborted) break;
    reports.push(await runOne(nemeses, options, interrupt.signal));
  }
  await Deno.mkdir(options.out, { recursive: true });
  await Deno.writeTextFile(`${options.out}/summary.md`, summaryMarkdown(reports));
  console.log(summaryMarkdown(reports));
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  const bad = reports.filter(runFailed);
  Deno.exit(interrupt.signal.aborted ? 130 : bad.length > 0 ? 1 : 0);
}
