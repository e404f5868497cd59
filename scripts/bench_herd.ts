#!/usr/bin/env -S deno run -P=bench-clients
// deno-lint-ignore-file no-console -- a benchmark program: printing its figures is its job
/**
 * `deno task bench:herd`: many runtime nodes through one failover.
 *
 * Per run: 3 redis + 3 sentinels on loopback (quorum 2, down-after 1000 ms,
 * failover-timeout 5000 ms); N independent clients spread over P worker
 * processes (`scripts/bench/herd_worker.ts`: each client registers,
 * heartbeats every second, appends one durable event every 100 ms; one
 * lease contender per process), all connecting at once; once they are
 * steady, kill -9 of the primary. Reported per run: the time for all N to
 * connect; sentinel connections and commands per client; t_switch; each
 * client's overhead after the first `+switch-master` (p50, p90, p99, max);
 * clients that never recovered; failed and unknown writes; the sentinels'
 * CPU during the window; warning lines per client; RSS per worker process.
 *
 *   deno task bench:herd [--clients N[,N…]] [--processes P] [--cycles K] [--out DIR]
 *
 * Writes `<out>/herd.json`, `<out>/herd.md` and `<out>/herd.svg`.
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
import { LocalCluster } from "../lib/process/local_cluster.ts";
import { RedisConnection } from "../lib/protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../lib/protocol/endpoint.ts";
import { parseInfo } from "../lib/protocol/info.ts";
import { replyToString } from "../lib/protocol/resp.ts";
import { SentinelWatcher } from "../lib/ha/sentinel_watcher.ts";
import { parseSwitchMaster } from "../lib/ha/resolver_decision.ts";
import { delay } from "../lib/common/delay.ts";
import { abortable } from "../lib/common/abortable.ts";
import type { ClientFigures } from "./bench/herd_worker.ts";
import { HerdWorkerProcess } from "./bench/herd_worker_process.ts";

/** Clients per worker process by default. */
const CLIENTS_PER_PROCESS = 50;
/**
 * Acknowledgements that arrive this soon after the kill are replies the dead
 * primary sent before it died (no new primary exists before down-after):
 * a client's recovery is its first acknowledgement after it.
 */
const IN_FLIGHT_MS = 500;
/** The window measured after the kill. */
const WINDOW_MS = 15_000;

/** What the targets judge. */
export const HERD_TARGETS = {
  overheadP99Ms: 100,
  overheadMaxMs: 500,
  commandsPerClientPerSentinel: 2,
  newSentinelConnectionsPerClient: 1,
  warningLinesPerClient: 1,
  connectAllMs: 1000,
  rssGrowthMbPerClient: 0.2,
} as const;

/** One run's figures. */
export interface HerdRun {
  clients: number;
  processes: number;
  cycle: number;
  connectAllMs: number;
  connectErrors: number;
  connectWarnings: number;
  connectionsPerClientPerSentinelAtConnect: number;
  peakConnectionsPerSentinel: number;
  switchMs: number | null;
  overheadMs: { p50: number; p90: number; p99: number; max: number } | null;
  /**
   * Where the overhead goes: from `+switch-master` to each client's session
   * on the new primary (its `failover` event), and from there to its first
   * acknowledged write (p50 and max of each).
   */
  overheadParts: {
    toSession: { p50: number; max: number };
    sessionToAck: { p50: number; max: number };
  } | null;
  recoverMs: { p50: number; max: number } | null;
  neverRecovered: number;
  failed: number;
  unknown: number;
  /**
   * Failovers in the window: one per kill, two when Sentinel fails over
   * again (a spurious second switch). The per-failover figures below are
   * divided by it.
   */
  failovers: number;
  /** Commands each client sent to each sentinel per failover (the clients' own counters). */
  commandsPerClientPerSentinel: number;
  /** Connections each client opened to sentinels per failover, in all (its own counter). */
  newSentinelConnectionsPerClient: number;
  /** The same, counted by the sentinels (total_connections_received), per client. */
  sentinelConnectionsReceivedPerClient: number;
  sentinelCpuSeconds: number;
  /** Warning lines each client logged per failover. */
  warningLinesPerClient: number;
  warningSamples: string[];
  /**
   * CPU the workers used in the 500 ms after `+switch-master`, ms (each
   * samples its own every 50 ms), in all and per client.
   */
  workerCpuMsAfterSwitch: { total: number; perClient: number } | null;
  /** The longest event-loop lag of any worker in the window, ms. */
  maxEventLoopLagMs: number;
  /** Each worker's RSS and V8 heap in use at the mark and at the end of the window, after a full GC. */
  memoryMbPerWorker: {
    rssAtMark: number;
    rssAfter: number;
    heapAtMark: number;
    heapAfter: number;
  }[];
  rssGrowthMbPerClient: number;
  heapGrowthMbPerClient: number;
  ownUnavailabilityMs: { p50: number; max: number } | null;
  clientsRecordingUnavailability: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** How long after `+switch-master` the workers' CPU is measured. */
const CPU_WINDOW_MS = 500;

/** CPU used between `from` and `to` (wall-clock ms), from samples `[time, CPU ms]`. */
function cpuBetween(series: readonly [number, number][], from: number, to: number): number {
  const at = (t: number): number => {
    const after = series.findIndex(([time]) => time >= t);
    if (after === -1) return series.at(-1)?.[1] ?? 0;
    if (after === 0) return series[0]![1];
    const [t0, c0] = series[after - 1]!;
    const [t1, c1] = series[after]!;
    return c0 + (c1 - c0) * (t - t0) / Math.max(1, t1 - t0);
  };
  return at(to) - at(from);
}

/** One sentinel's counters: CPU, connections received, connected clients. */
interface SentinelStats {
  cpu: number;
  received: number;
  connected: number;
}

/** Persistent connections to the sentinels, for their counters (none opened per sample). */
class SentinelCounters implements AsyncDisposable {
  readonly #conns: RedisConnection[];

  private constructor(conns: RedisConnection[]) {
    this.#conns = conns;
  }

  static async open(sentinels: readonly Endpoint[]): Promise<SentinelCounters> {
    return new SentinelCounters(
      await Promise.all(
        sentinels.map((s) => RedisConnection.connect(s, { connectTimeoutMs: 2000 })),
      ),
    );
  }

  /** Each sentinel's counters (Sentinel keeps no command statistics: the clients count theirs). */
  async read(): Promise<SentinelStats[]> {
    return await Promise.all(this.#conns.map(async (conn) => {
      const info = parseInfo(
        replyToString(await conn.send(["INFO", "all"], { timeoutMs: 5000 })) ?? "",
      );
      return {
        cpu: Number(info.get("used_cpu_sys") ?? 0) + Number(info.get("used_cpu_user") ?? 0),
        received: Number(info.get("total_connections_received") ?? 0),
        connected: Number(info.get("connected_clients") ?? 0),
      };
    }));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.#conns.map((c) => c.close()));
  }
}

/** What the connect storm of a herd measured (the same for each of its cycles). */
interface ConnectFigures {
  connectAllMs: number;
  connectErrors: number;
  connectWarnings: number;
  connectionsPerClientPerSentinelAtConnect: number;
}

/**
 * One herd: a cluster, its workers and the connect storm; then `cycles`
 * failovers one after the other, each once every client is steady, the
 * killed node restarted as a replica in between. Reports one run per cycle.
 */
async function runHerd(
  clients: number,
  processes: number,
  cycles: number,
  onRun: (run: HerdRun) => void,
  signal: AbortSignal,
): Promise<void> {
  await using cluster = await LocalCluster.start({
    baseDir: ".tmp",
    replicas: 2,
    sentinels: 3,
    quorum: 2,
    downAfterMs: 1000,
    failoverTimeoutMs: 5000,
    signal,
  });
  const sentinels = cluster.sentinelEndpoints;
  await using counters = await SentinelCounters.open(sentinels);
  console.error(`bench:herd: ${clients} clients in ${processes} processes: cluster up, connecting`);
  const namespace = `herd_${crypto.randomUUID().slice(0, 6)}`;
  const workers: HerdWorkerProcess[] = [];
  const sizes = Array.from(
    { length: processes },
    (_, p) => Math.floor(clients / processes) + (p < clients % processes ? 1 : 0),
  );
  let first = 0;
  for (const [p, size] of sizes.entries()) {
    if (size === 0) continue;
    workers.push(
      new HerdWorkerProcess({
        sentinels: sentinels.map(formatEndpoint).join(","),
        master: cluster.masterName,
        clients: size,
        first,
        namespace,
        contender: p < 3,
      }, signal),
    );
    first += size;
  }
  await using _stop = {
    [Symbol.asyncDispose]: async () => {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
  await Promise.all(workers.map((w) => w.next("loaded")));

  // The connect storm: every client of every worker at once.
  const beforeConnect = await counters.read();
  await Promise.all(workers.map((w) => w.send("connect")));
  const connected = await Promise.all(workers.map((w) => w.next("connected", 120_000)));
  const connectMs = connected.flatMap((c) => c.connectMs as (number | null)[]);
  const afterConnect = await counters.read();
  const connect: ConnectFigures = {
    connectAllMs: Math.round(Math.max(...connectMs.map((m) => m ?? Infinity))),
    connectErrors: connected.reduce((n, c) => n + (c.errors as string[]).length, 0),
    connectWarnings: connected.reduce((n, c) => n + (c.warnings as number), 0),
    connectionsPerClientPerSentinelAtConnect:
      afterConnect.reduce((n, s, i) => n + s.received - beforeConnect[i]!.received, 0) /
      clients / sentinels.length,
  };
  for (let cycle = 1; cycle <= cycles; cycle++) {
    const primary = await cluster.waitForAgreement({ timeoutMs: 60_000, signal });
    await abortable(cluster.waitReplicasInSync(primary, 30_000), signal);
    onRun(await failover(cluster, primary, workers, counters, { clients, cycle, connect, signal }));
    const next = await cluster.waitForAgreement({ excluding: primary, timeoutMs: 60_000, signal });
    if (cycle < cycles) await abortable(cluster.restartAsReplica(primary, next), signal);
  }
}

/** One failover of a herd: kill -9 of `primary` once every client is steady, then the window. */
async function failover(
  cluster: LocalCluster,
  primary: Endpoint,
  workers: readonly HerdWorkerProcess[],
  counters: SentinelCounters,
  run: { clients: number; cycle: number; connect: ConnectFigures; signal: AbortSignal },
): Promise<HerdRun> {
  const { clients } = run;
  const sentinels = cluster.sentinelEndpoints;
  const steady = await Promise.all(workers.map(async (w) => {
    await w.send("steady");
    return (await w.next("steady", 60_000)).behind as number;
  }));
  const behind = steady.reduce((n, b) => n + b, 0);
  if (behind > 0) throw new Error(`${behind} clients had no write acknowledged in 30 s`);
  let switchAt: number | undefined;
  // Where Sentinel switched to in the window: more than one place when it fails over twice.
  const switchedTo = new Set<string>();
  await using watcher = new SentinelWatcher({
    sentinels: () => sentinels,
    masterName: cluster.masterName,
    onEvent: (event) => {
      const parsed = event.channel === "+switch-master"
        ? parseSwitchMaster(event.payload)
        : undefined;
      if (parsed !== undefined) {
        switchAt ??= Date.now();
        switchedTo.add(formatEndpoint(parsed.to));
      }
    },
  });
  await watcher.ready();
  const marked = await Promise.all(workers.map(async (w) => {
    await w.send("mark");
    return await w.next("marked");
  }));
  const before = await counters.read();
  let peak = before.map((s) => s.connected);
  const killedAt = Date.now();
  cluster.node(primary).kill("SIGKILL");
  // The window: the sentinels' connections sampled every 100 ms until it ends.
  const end = killedAt + WINDOW_MS;
  while (Date.now() < end) {
    await delay(100, run.signal);
    const now = await counters.read().catch(() => undefined);
    if (now !== undefined) peak = peak.map((p, i) => Math.max(p, now[i]!.connected));
  }
  const after = await counters.read();
  const reports = await Promise.all(workers.map(async (w) => {
    await w.send("report");
    return await w.next("report");
  }));

  const failovers = Math.max(1, switchedTo.size);
  const workerCpu = switchAt === undefined ? undefined : reports.reduce(
    (n, r) =>
      n + cpuBetween(r.cpuSeries as [number, number][], switchAt!, switchAt! + CPU_WINDOW_MS),
    0,
  );
  const figures = reports.flatMap((r) => r.figures as ClientFigures[]);
  // Each client's first acknowledged write after the kill (replies in flight at the kill aside).
  const recovered = figures.flatMap((f) => {
    const first = f.acksAfterMark.find((t) => t > killedAt + IN_FLIGHT_MS);
    return first === undefined ? [] : [first];
  });
  const overheads = switchAt === undefined
    ? []
    : recovered.map((t) => t - switchAt!).sort((a, b) => a - b);
  const recovers = recovered.map((t) => t - killedAt).sort((a, b) => a - b);
  const toSession: number[] = [];
  const sessionToAck: number[] = [];
  for (const f of figures) {
    const ack = f.acksAfterMark.find((t) => t > killedAt + IN_FLIGHT_MS);
    if (f.failoverAt === null || switchAt === undefined || ack === undefined) continue;
    toSession.push(f.failoverAt - switchAt);
    sessionToAck.push(ack - f.failoverAt);
  }
  const spread = (values: number[]): { p50: number; max: number } => {
    const sorted = values.sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), max: sorted.at(-1)! };
  };
  const own = figures.flatMap((f) => f.ownUnavailabilityMs === null ? [] : [f.ownUnavailabilityMs])
    .sort((a, b) => a - b);
  const sentinelCommands = figures.reduce((n, f) => n + f.sentinelCommands, 0);
  const sentinelConnections = figures.reduce((n, f) => n + f.sentinelConnections, 0);
  const mb = (n: unknown): number => Math.round((n as number) / 1048576 * 10) / 10;
  const memory = reports.map((r, i) => ({
    rssAtMark: mb(marked[i]!.rss),
    rssAfter: mb(r.rss),
    heapAtMark: mb(marked[i]!.heap),
    heapAfter: mb(r.heap),
  }));
  return {
    clients,
    processes: workers.length,
    cycle: run.cycle,
    ...run.connect,
    peakConnectionsPerSentinel: Math.max(...peak),
    switchMs: switchAt === undefined ? null : switchAt - killedAt,
    overheadMs: overheads.length === 0 ? null : {
      p50: percentile(overheads, 50),
      p90: percentile(overheads, 90),
      p99: percentile(overheads, 99),
      max: overheads.at(-1)!,
    },
    overheadParts: toSession.length === 0
      ? null
      : { toSession: spread(toSession), sessionToAck: spread(sessionToAck) },
    recoverMs: recovers.length === 0
      ? null
      : { p50: percentile(recovers, 50), max: recovers.at(-1)! },
    neverRecovered: figures.length - recovered.length,
    failed: figures.reduce((n, f) => n + f.failed, 0),
    unknown: figures.reduce((n, f) => n + f.unknown, 0),
    failovers,
    commandsPerClientPerSentinel: sentinelCommands / clients / sentinels.length / failovers,
    newSentinelConnectionsPerClient: sentinelConnections / clients / failovers,
    sentinelConnectionsReceivedPerClient:
      after.reduce((n, s, i) => n + s.received - before[i]!.received, 0) / clients,
    sentinelCpuSeconds: after.reduce((n, s, i) => n + s.cpu - before[i]!.cpu, 0),
    warningLinesPerClient: reports.reduce((n, r) => n + (r.warnings as number), 0) / clients /
      failovers,
    warningSamples: [
      ...new Map(
        reports.flatMap((r) => r.warningSamples as string[]).map((
          line,
        ) => [line.replace(/^\S+ /, ""), line]),
      ).values(),
    ].slice(0, 10),
    workerCpuMsAfterSwitch: workerCpu === undefined
      ? null
      : { total: Math.round(workerCpu), perClient: Math.round(workerCpu / clients * 100) / 100 },
    maxEventLoopLagMs: Math.round(Math.max(...reports.map((r) => r.maxLagMs as number))),
    memoryMbPerWorker: memory,
    rssGrowthMbPerClient: memory.reduce((n, r) => n + r.rssAfter - r.rssAtMark, 0) / clients,
    heapGrowthMbPerClient: memory.reduce((n, r) => n + r.heapAfter - r.heapAtMark, 0) / clients,
    ownUnavailabilityMs: own.length === 0 ? null : { p50: percentile(own, 50), max: own.at(-1)! },
    clientsRecordingUnavailability: own.length,
  };
}

/** The herd sizes the targets name: failover figures at 300 clients, the connect storm at 400. */
const TARGET_CLIENTS = { failover: 300, connect: 400 } as const;

/**
 * The targets, each PASS or FAIL. A target that names a herd size is judged
 * on the runs of that size, or of the largest herd run if there is none;
 * the per-client costs on every run; the memory growth on every failover
 * after a herd's first when a herd went through several (the first grows
 * V8's heap to the burst once), else on the first.
 */
export function verdicts(
  runs: readonly HerdRun[],
): { target: string; value: string; pass: boolean }[] {
  const out: { target: string; value: string; pass: boolean }[] = [];
  const sizes = runs.map((r) => r.clients);
  const sized = (n: number): { n: number; runs: HerdRun[] } => {
    const size = sizes.includes(n) ? n : Math.max(...sizes);
    return { n: size, runs: runs.filter((r) => r.clients === size) };
  };
  const fmt = (n: number): string =>
    Number.isFinite(n) ? String(Math.round(n * 100) / 100) : "none";
  const worst = (of: readonly HerdRun[], f: (r: HerdRun) => number): number =>
    Math.max(...of.map(f));
  const failover = sized(TARGET_CLIENTS.failover);
  const lost = worst(failover.runs, (r) => r.neverRecovered);
  out.push({
    target: `N = ${failover.n}: every client recovers`,
    value: `${lost} never recovered`,
    pass: lost === 0,
  });
  const p99 = worst(failover.runs, (r) => r.overheadMs?.p99 ?? Infinity);
  const max = worst(failover.runs, (r) => r.overheadMs?.max ?? Infinity);
  out.push({
    target: `N = ${failover.n}: overhead p99 ≤ ${HERD_TARGETS.overheadP99Ms} ms`,
    value: `${fmt(p99)} ms`,
    pass: p99 <= HERD_TARGETS.overheadP99Ms,
  });
  out.push({
    target: `N = ${failover.n}: overhead max ≤ ${HERD_TARGETS.overheadMaxMs} ms`,
    value: `${fmt(max)} ms`,
    pass: max <= HERD_TARGETS.overheadMaxMs,
  });
  const commands = worst(runs, (r) => r.commandsPerClientPerSentinel);
  out.push({
    target:
      `commands per client to each sentinel per failover ≤ ${HERD_TARGETS.commandsPerClientPerSentinel}`,
    value: fmt(commands),
    pass: commands <= HERD_TARGETS.commandsPerClientPerSentinel,
  });
  const conns = worst(runs, (r) => r.newSentinelConnectionsPerClient);
  out.push({
    target:
      `new sentinel connections per client per failover ≤ ${HERD_TARGETS.newSentinelConnectionsPerClient}`,
    value: fmt(conns),
    pass: conns <= HERD_TARGETS.newSentinelConnectionsPerClient,
  });
  const warnings = worst(runs, (r) => r.warningLinesPerClient);
  out.push({
    target: `warning lines per client per failover ≤ ${HERD_TARGETS.warningLinesPerClient}`,
    value: fmt(warnings),
    pass: warnings <= HERD_TARGETS.warningLinesPerClient,
  });
  const storm = sized(TARGET_CLIENTS.connect);
  const connect = worst(storm.runs, (r) => r.connectAllMs);
  const connectProblems = worst(storm.runs, (r) => r.connectErrors + r.connectWarnings);
  out.push({
    target: `connecting ${storm.n} at once: all within ${HERD_TARGETS.connectAllMs} ms`,
    value: `${fmt(connect)} ms`,
    pass: connect <= HERD_TARGETS.connectAllMs,
  });
  out.push({
    target: `connecting ${storm.n} at once: no sentinel query times out (no error, no warning)`,
    value: `${connectProblems}`,
    pass: connectProblems === 0,
  });
  const later = runs.filter((r) => r.cycle > 1);
  const rss = worst(later.length > 0 ? later : runs, (r) => r.rssGrowthMbPerClient);
  out.push({
    target: `RSS growth across a failover ≤ ${HERD_TARGETS.rssGrowthMbPerClient} MB per client${
      later.length > 0 ? " (failovers after a herd's first)" : ""
    }`,
    value: `${fmt(rss)} MB`,
    pass: rss <= HERD_TARGETS.rssGrowthMbPerClient,
  });
  return out;
}

function markdown(runs: readonly HerdRun[]): string {
  const lines = [
    "| clients | processes | cycle | connect all ms | failovers | t_switch ms | overhead p50 | p90 | p99 | max | to session p50 | never recovered | failed | unknown | cmds/client/sentinel | new sentinel conns/client | warnings/client | worker CPU ms/client | loop lag max ms | RSS MB/client | heap MB/client |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of runs) {
    const o = r.overheadMs;
    const cells = [
      r.clients,
      r.processes,
      r.cycle,
      r.connectAllMs,
      r.failovers,
      r.switchMs ?? "–",
      o?.p50 ?? "–",
      o?.p90 ?? "–",
      o?.p99 ?? "–",
      o?.max ?? "–",
      r.overheadParts?.toSession.p50 ?? "–",
      r.neverRecovered,
      r.failed,
      r.unknown,
      r.commandsPerClientPerSentinel.toFixed(2),
      r.newSentinelConnectionsPerClient.toFixed(2),
      r.warningLinesPerClient.toFixed(2),
      r.workerCpuMsAfterSwitch?.perClient ?? "–",
      r.maxEventLoopLagMs,
      r.rssGrowthMbPerClient.toFixed(3),
      r.heapGrowthMbPerClient.toFixed(3),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  lines.push("", "| target | measured | verdict |", "| --- | --- | --- |");
  for (const v of verdicts(runs)) {
    lines.push(`| ${v.target} | ${v.value} | ${v.pass ? "PASS" : "FAIL"} |`);
  }
  return lines.join("\n") + "\n";
}

/** Overhead p50 and p99 against N, one point per run (median over cycles). */
function chart(runs: readonly HerdRun[]): string {
  const byN = new Map<number, HerdRun[]>();
  for (const r of runs) byN.set(r.clients, [...(byN.get(r.clients) ?? []), r]);
  const ns = [...byN.keys()].sort((a, b) => a - b);
  const pick = (n: number, key: "p50" | "p99"): number => {
    const values = byN.get(n)!.map((r) => r.overheadMs?.[key] ?? NaN).filter(Number.isFinite).sort((
      a,
      b,
    ) => a - b);
    return values[Math.floor(values.length / 2)] ?? NaN;
  };
  const width = 640, height = 320, left = 60, bottom = 40, top = 30;
  const maxY = Math.max(100, ...ns.flatMap((n) => [pick(n, "p99")]).filter(Number.isFinite)) * 1.1;
  const x = (i: number): number =>
    left + (ns.length === 1 ? 0 : i * (width - left - 20) / (ns.length - 1));
  const y = (v: number): number => height - bottom - v / maxY * (height - bottom - top);
  const line = (key: "p50" | "p99"): string =>
    ns.map((n, i) => `${i === 0 ? "M" : "L"}${x(i).toFixed(1)},${y(pick(n, key)).toFixed(1)}`).join(
      " ",
    );
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<text x="${left}" y="18">Overhead after +switch-master per client (ms) against the number of clients</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - 10}" y2="${
      height - bottom
    }" stroke="#888"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#888"/>`,
    `<line x1="${left}" y1="${y(100)}" x2="${width - 10}" y2="${
      y(100)
    }" stroke="#c33" stroke-dasharray="4 3"/>`,
    `<text x="${width - 12}" y="${
      y(100) - 4
    }" text-anchor="end" fill="#c33">p99 target 100 ms</text>`,
    `<path d="${line("p50")}" fill="none" stroke="#2a7" stroke-width="2"/>`,
    `<path d="${line("p99")}" fill="none" stroke="#27c" stroke-width="2"/>`,
  ];
  ns.forEach((n, i) => {
    parts.push(`<text x="${x(i)}" y="${height - bottom + 16}" text-anchor="middle">${n}</text>`);
    for (const key of ["p50", "p99"] as const) {
      const v = pick(n, key);
      if (Number.isFinite(v)) {
        parts.push(
          `<circle cx="${x(i)}" cy="${y(v)}" r="3" fill="${key === "p50" ? "#2a7" : "#27c"}"/>`,
        );
        parts.push(`<text x="${x(i) + 5}" y="${y(v) - 5}" fill="#333">${v}</text>`);
      }
    }
  });
  for (let v = 0; v <= maxY; v += maxY > 500 ? 200 : 50) {
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  parts.push(
    `<text x="${(width + left) / 2}" y="${
      height - 6
    }" text-anchor="middle">clients (green: p50, blue: p99)</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

if (import.meta.main) {
  const options = withTaskUsage("bench:herd", () => {
    const values = parseTaskFlags(Deno.args, {
      clients: { type: "string", default: "300" },
      processes: { type: "string" },
      cycles: { type: "string", default: "2" },
      out: { type: "string" },
    });
    const clients = values.clients.split(",").map((c) =>
      intTaskFlag(c.trim(), "--clients", 1, 1, 2000)
    );
    return {
      clients,
      processes: values.processes === undefined
        ? undefined
        : intTaskFlag(values.processes, "--processes", 1, 1, 64),
      cycles: intTaskFlag(values.cycles, "--cycles", 1, 1, 50),
      out: checkOutDir(
        values.out ?? `bench/results/herd-${new Date().toISOString().slice(0, 10)}`,
        {
          allowed: ["./.tmp", "./bench"],
          set: "bench-clients",
          script: "scripts/bench_herd.ts",
        },
      ),
    };
  });
  if (options.clients.length === 0) throw new TaskUsageError("--clients is empty");
  await Deno.mkdir(options.out, { recursive: true });
  // Ctrl-C (or SIGTERM) ends the herd: its workers, cluster and temp dir go with it.
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const runs: HerdRun[] = [];
  for (const clients of options.clients) {
    if (interrupt.signal.aborted) break;
    const processes = options.processes ?? Math.max(1, Math.ceil(clients / CLIENTS_PER_PROCESS));
    const herd = runHerd(clients, processes, options.cycles, (run) => {
      runs.push(run);
      console.error(
        `bench:herd: ${clients} clients in ${processes} processes, cycle ${run.cycle}: connect ${run.connectAllMs} ms, ` +
          `switch ${run.switchMs} ms, overhead p50 ${run.overheadMs?.p50} p99 ${run.overheadMs?.p99} max ${run.overheadMs?.max} ms ` +
          `(to session p50 ${run.overheadParts?.toSession.p50} max ${run.overheadParts?.toSession.max}, then to ack p50 ${run.overheadParts?.sessionToAck.p50} max ${run.overheadParts?.sessionToAck.max}), ` +
          `never recovered ${run.neverRecovered}, cmds/client/sentinel ${
            run.commandsPerClientPerSentinel.toFixed(2)
          }, ` +
          `new sentinel conns/client ${
            run.newSentinelConnectionsPerClient.toFixed(2)
          }, warnings/client ${run.warningLinesPerClient.toFixed(2)}, ` +
          `loop lag max ${run.maxEventLoopLagMs} ms, worker CPU in ${CPU_WINDOW_MS} ms after the switch ${run.workerCpuMsAfterSwitch?.total} ms (${run.workerCpuMsAfterSwitch?.perClient} ms/client), RSS MB/client ${
            run.rssGrowthMbPerClient.toFixed(3)
          }, heap MB/client ${run.heapGrowthMbPerClient.toFixed(3)}`,
      );
    }, interrupt.signal);
    await herd.catch((error) => {
      if (!interrupt.signal.aborted) throw error;
    });
  }
  if (interrupt.signal.aborted) {
    console.error("bench:herd: interrupted; every process and temp dir it started is gone");
    Deno.exit(130);
  }
  await Deno.writeTextFile(
    `${options.out}/herd.json`,
    JSON.stringify({ runs, verdicts: verdicts(runs) }, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${options.out}/herd.md`, markdown(runs));
  await Deno.writeTextFile(`${options.out}/herd.svg`, chart(runs));
  console.log(markdown(runs));
}
