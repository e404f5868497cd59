// deno-lint-ignore-file no-console -- a benchmark helper: it speaks JSON lines on stdout
/**
 * One worker process of `deno task bench:herd`: a share of the herd's
 * clients, each an independent runtime node through the public API (its own
 * `StateStore` and `RedisHaClient`): it registers, heartbeats every second
 * (a hot write) and appends one durable event every 100 ms; one client per
 * process also campaigns for the leader lease.
 *
 * Commands on stdin, one per line, answered by one JSON line on stdout:
 * `connect` (connect every client at once: per-client connect times),
 * `steady` (answers once every client had a write acknowledged after the
 * command), `mark` (from now on, count what the failover costs), `report`
 * (per-client acks, failures and the process's memory since the mark),
 * `sample` (the process's memory after a full collection, and its pid),
 * `stop`.
 *
 *   deno run -P=bench --v8-flags=--expose-gc scripts/bench/herd_worker.ts '<json options>'
 *
 * @module
 */

import { configFromOptions } from "../../lib/ha/config.ts";
import { configureCliLogging } from "../../lib/common/log.ts";
import {
  AbortedError,
  OutcomeUnknownError,
  RetriesExhaustedError,
  WaitError,
} from "../../lib/common/errors.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import { campaign, type Lease } from "../../lib/state/lease.ts";
import { delay } from "../../lib/common/delay.ts";
import process from "node:process";

/** What the main process tells a worker. */
export interface HerdWorkerOptions {
  /** `host:port,…` of the sentinels. */
  sentinels: string;
  /** The master name. */
  master: string;
  /** How many clients this worker runs. */
  clients: number;
  /** The index of its first client (ids are unique across workers). */
  first: number;
  /** Key namespace of the run. */
  namespace: string;
  /** Whether one of its clients campaigns for the leader lease. */
  contender: boolean;
}

/** One client's figures since the mark (wall-clock ms). */
export interface ClientFigures {
  lastAckBeforeMark: number | null;
  /** Every acknowledged write since the mark (wall-clock ms). */
  acksAfterMark: number[];
  failed: number;
  unknown: number;
  /** Failover unavailability the client itself recorded since the mark, ms. */
  ownUnavailabilityMs: number | null;
  /** Commands the client sent to sentinels since the mark (its own metric). */
  sentinelCommands: number;
  /** Connections the client opened to sentinels since the mark (its own metric). */
  sentinelConnections: number;
  /** When the client installed its session on the new primary (its `failover` event), ms. */
  failoverAt: number | null;
}

/** A client's figures from a mark on (keeping when it was last acknowledged before it). */
function freshFigures(lastAckBeforeMark: number | null): ClientFigures {
  return {
    lastAckBeforeMark,
    acksAfterMark: [],
    failed: 0,
    unknown: 0,
    ownUnavailabilityMs: null,
    sentinelCommands: 0,
    sentinelConnections: 0,
    failoverAt: null,
  };
}

const options = JSON.parse(Deno.args[0] ?? "{}") as HerdWorkerOptions;
const print = (line: Record<string, unknown>): void => console.log(JSON.stringify(line));

// Warning lines the clients log, counted (the library logs through the CLI's sink here).
let warnings = 0;
const warningSamples: string[] = [];
const warningKinds = new Set<string>();
await configureCliLogging({
  format: "text",
  level: "warning",
  write: (line) => {
    warnings++;
    // One sample of each warning text (timestamps aside).
    const text = line.trim().slice(0, 300);
    const kind = text.replace(/^\S+ /, "");
    if (warningSamples.length < 10 && !warningKinds.has(kind)) {
      warningKinds.add(kind);
      warningSamples.push(text);
    }
  },
});

const config = configFromOptions({
  haMode: "sentinel",
  sentinels: options.sentinels,
  sentinelMaster: options.master,
  waitReplicas: 1,
  waitTimeoutMs: 500,
  namespace: options.namespace,
});

interface Client {
  readonly id: string;
  /** When a write of the client was last acknowledged (wall-clock ms). */
  lastAck: number;
  store?: StateStore;
  figures: ClientFigures;
  unavailabilityAtMark: { count: number; sum: number };
  sentinelAtMark: { commands: number; connections: number };
}

const clients: Client[] = Array.from({ length: options.clients }, (_, i) => ({
  id: `node-${options.first + i}`,
  lastAck: 0,
  figures: freshFigures(null),
  unavailabilityAtMark: { count: 0, sum: 0 },
  sentinelAtMark: { commands: 0, connections: 0 },
}));
let markAt: number | undefined;
/** The event loop's longest lag since the mark, ms (a 10 ms timer, measured). */
let maxLagMs = 0;
let lagTimer: ReturnType<typeof setInterval> | undefined;
/** The process's CPU time (ms) every 50 ms since the mark: `[wall-clock ms, CPU ms]`. */
let cpuSeries: [number, number][] = [];
const stopping = new AbortController();
const loops: Promise<void>[] = [];

/** A counter of the client's own metrics. */
function counter(store: StateStore, name: string): number {
  const match = new RegExp(`^mn_redis_ha_${name}_total (\\S+)$`, "m").exec(
    store.client.renderMetrics(),
  );
  return Number(match?.[1] ?? 0);
}

function unavailability(store: StateStore): { count: number; sum: number } {
  const text = store.client.renderMetrics();
  const count = /^mn_redis_ha_failover_unavailability_seconds_count (\S+)$/m.exec(text);
  const sum = /^mn_redis_ha_failover_unavailability_seconds_sum (\S+)$/m.exec(text);
  return { count: Number(count?.[1] ?? 0), sum: Number(sum?.[1] ?? 0) };
}

/** Records the outcome of one write of `client`. */
function record(client: Client, error: unknown): void {
  const now = Date.now();
  const after = markAt !== undefined && now >= markAt;
  if (error === undefined) {
    client.lastAck = now;
    if (after) client.figures.acksAfterMark.push(now);
    else client.figures.lastAckBeforeMark = now;
    return;
  }
  if (!after || stopping.signal.aborted) return;
  const indeterminate = error instanceof WaitError || error instanceof OutcomeUnknownError ||
    (error instanceof AbortedError && error.mayHaveApplied) ||
    error instanceof RetriesExhaustedError;
  if (indeterminate) client.figures.unknown++;
  else client.figures.failed++;
}

/** Runs `write` every `periodMs` until stopped, recording each outcome. */
function every(client: Client, periodMs: number, write: () => Promise<unknown>): Promise<void> {
  return (async () => {
    while (!stopping.signal.aborted) {
      const started = performance.now();
      await write().then(() => record(client, undefined), (error) => record(client, error));
      const left = periodMs - (performance.now() - started);
      await delay(Math.max(0, left), stopping.signal).catch(() => {});
    }
  })();
}

async function connectAll(): Promise<void> {
  const started = performance.now();
  const results = await Promise.allSettled(clients.map(async (client) => {
    const store = await StateStore.connect(config);
    client.store = store;
    store.client.events.on("failover", () => {
      if (markAt !== undefined) client.figures.failoverAt ??= Date.now();
    });
    const connectedMs = performance.now() - started;
    await store.nodes.register(client.id, { ttlMs: 15_000 });
    return connectedMs;
  }));
  const connectMs = results.map((r) => r.status === "fulfilled" ? r.value : null);
  const errors = results.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []);
  print({ kind: "connected", connectMs, errors, warnings, warningSamples });
  for (const client of clients) {
    const store = client.store;
    if (store === undefined) continue;
    loops.push(every(client, 1000, () => store.nodes.heartbeat(client.id)));
    let seq = 0;
    loops.push(
      every(
        client,
        100,
        () => store.events.append(`herd-${client.id}`, { id: `e${seq++}`, type: "herd.tick" }),
      ),
    );
  }
  const leader = clients[0]?.store;
  if (options.contender && leader !== undefined) loops.push(contend(leader));
}

/** One lease contender per process: holds the leader lease while it can, campaigns again. */
async function contend(store: StateStore): Promise<void> {
  while (!stopping.signal.aborted) {
    let lease: Lease | undefined;
    try {
      lease = await campaign(store, "leader", {
        holder: `worker-${options.first}`,
        ttlMs: 5000,
        keepAlive: {},
        signal: stopping.signal,
      });
      await new Promise<void>((resolve) => {
        const done = AbortSignal.any([stopping.signal, lease!.signal]);
        if (done.aborted) resolve();
        else done.addEventListener("abort", () => resolve(), { once: true });
      });
    } catch {
      await delay(500, stopping.signal).catch(() => {});
    } finally {
      await lease?.release().catch(() => false);
    }
  }
}

/** Answers once every connected client had a write acknowledged after now (30 s at most). */
async function steady(): Promise<void> {
  const since = Date.now();
  const deadline = since + 30_000;
  const behind = (): number =>
    clients.filter((c) => c.store !== undefined && c.lastAck <= since).length;
  while (behind() > 0 && Date.now() < deadline) await delay(50);
  print({ kind: "steady", behind: behind() });
}

/**
 * The process's memory after a full collection (the worker runs with
 * `--expose-gc`): what the clients retain, not garbage not yet collected.
 */
function settledMemory(): { rss: number; heap: number; heapTotal: number; external: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const memory = Deno.memoryUsage();
  return {
    rss: memory.rss,
    heap: memory.heapUsed,
    heapTotal: memory.heapTotal,
    external: memory.external,
  };
}

function mark(): void {
  markAt = Date.now();
  maxLagMs = 0;
  cpuSeries = [];
  if (lagTimer === undefined) {
    let expected = performance.now() + 10;
    let ticks = 0;
    lagTimer = setInterval(() => {
      const now = performance.now();
      maxLagMs = Math.max(maxLagMs, now - expected);
      expected = now + 10;
      if (ticks++ % 5 === 0) {
        const used = process.cpuUsage();
        cpuSeries.push([Date.now(), (used.user + used.system) / 1000]);
      }
    }, 10);
  }
  warnings = 0;
  warningSamples.length = 0;
  warningKinds.clear();
  for (const client of clients) {
    client.figures = freshFigures(client.figures.lastAckBeforeMark);
    if (client.store !== undefined) {
      client.unavailabilityAtMark = unavailability(client.store);
      client.sentinelAtMark = {
        commands: counter(client.store, "sentinel_commands"),
        connections: counter(client.store, "sentinel_connections"),
      };
    }
  }
  print({ kind: "marked", at: markAt, ...settledMemory() });
}

function report(): void {
  const figures = clients.map((client) => {
    if (client.store !== undefined) {
      const now = unavailability(client.store);
      const windows = now.count - client.unavailabilityAtMark.count;
      client.figures.ownUnavailabilityMs = windows > 0
        ? Math.round((now.sum - client.unavailabilityAtMark.sum) * 1000 / windows)
        : null;
      client.figures.sentinelCommands = counter(client.store, "sentinel_commands") -
        client.sentinelAtMark.commands;
      client.figures.sentinelConnections = counter(client.store, "sentinel_connections") -
        client.sentinelAtMark.connections;
    }
    return client.figures;
  });
  print({
    kind: "report",
    figures,
    warnings,
    warningSamples,
    maxLagMs,
    cpuSeries,
    ...settledMemory(),
  });
}

async function stop(): Promise<void> {
  stopping.abort();
  clearInterval(lagTimer);
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.store?.close()));
  print({ kind: "stopped" });
}

print({ kind: "loaded", pid: Deno.pid });
/** Lines of stdin, as they come. */
async function* stdinLines(): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      yield buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
    }
  }
}

for await (const line of stdinLines()) {
  const command = line.trim();
  if (command === "connect") await connectAll();
  else if (command === "steady") await steady();
  else if (command === "sample") print({ kind: "sample", pid: Deno.pid, ...settledMemory() });
  else if (command === "mark") mark();
  else if (command === "report") report();
  else if (command === "stop") {
    await stop();
    break;
  }
}
