/**
 * The replica-read part of `deno task bench`: read throughput with
 * `MN_REDIS_READ_FROM=primary` against `replica-preferred`, over one and two
 * replicas (a Sentinel cluster each: 3 sentinels), for a GET-heavy and a
 * `jobs.get`-heavy mix at 50 in flight; the primary's CPU per 1,000 reads
 * either way (the offload); and the per-read cost of the freshness proof
 * (p50 of one replica read through the client against a raw `GET` on the
 * same replica, one at a time).
 *
 * On a 2-core machine every node, sentinel and this process share the
 * cores, so throughput ratios are bounded by them; the primary's CPU per
 * 1,000 reads is the figure that carries to real boxes.
 */

import type { RedisHaClient } from "../../lib/ha/client.ts";
import { configFromOptions, type ReadFrom } from "../../lib/ha/config.ts";
import { LocalCluster } from "../../lib/process/local_cluster.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import { median } from "./targets.ts";
import { IN_FLIGHT, inFlight, serverCpuSeconds } from "./load.ts";

/** One measured figure: median and range over the rounds. */
export interface ReadRow {
  readonly name: string;
  readonly unit: string;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

const KEYS = 100;

/** 50 workers reading back to back for `ms`: reads per second and the primary's CPU ms per 1k reads. */
async function measure(
  ms: number,
  primary: RedisConnection,
  read: (w: number, i: number) => Promise<unknown>,
): Promise<{ rate: number; cpuPerK: number }> {
  const cpuBefore = await serverCpuSeconds(primary);
  const started = performance.now();
  const rate = await inFlight(ms, read);
  const done = rate * ((performance.now() - started) / 1000);
  const cpu = (await serverCpuSeconds(primary)) - cpuBefore;
  return { rate, cpuPerK: (cpu * 1000) / (done / 1000) };
}

/** Runs the replica-read figures on two fresh clusters (1 and 2 replicas). */
export async function readBench(
  options: { rounds: number; ms: number; say: (line: string) => void },
): Promise<ReadRow[]> {
  const rows: ReadRow[] = [];
  const push = (name: string, unit: string, values: number[]): void => {
    rows.push({
      name,
      unit,
      median: median(values),
      min: Math.min(...values),
      max: Math.max(...values),
    });
  };
  for (const replicas of [1, 2]) {
    options.say(`bench: replica reads over ${replicas} replica(s)`);
    await using cluster = await LocalCluster.start({ baseDir: ".tmp", replicas, sentinels: 3 });
    const base = {
      haMode: "sentinel" as const,
      sentinels: cluster.sentinelEndpoints.map(formatEndpoint),
      sentinelMaster: cluster.masterName,
      namespace: "bench_reads",
    };
    const connect = (readFrom: ReadFrom): Promise<StateStore> =>
      StateStore.connect(configFromOptions({ ...base, readFrom, readMaxLagMs: 500 }));
    await using onPrimary = await connect("primary");
    await using onReplicas = await connect("replica-preferred");
    const primaryConn = await RedisConnection.connect(cluster.nodes[0]!.endpoint);
    try {
      for (let k = 0; k < KEYS; k++) {
        await onPrimary.client.command(["SET", `bench_reads:k:${k}`, "x".repeat(64)]);
      }
      for (let w = 0; w < IN_FLIGHT; w++) {
        await onPrimary.jobs.create(`read-job-${w}`, { w, payload: "y".repeat(256) })
          .catch(() => {});
      }
      await cluster.waitReplicasInSync(cluster.nodes[0]!.endpoint);
      const get = (c: RedisHaClient) => (w: number, i: number) =>
        c.read(["GET", `bench_reads:k:${(w * 7 + i) % KEYS}`]);
      const job = (s: StateStore) => (w: number) => s.jobs.get(`read-job-${w}`);
      const figures = new Map<string, number[]>();
      const add = (name: string, value: number): void => {
        figures.set(name, [...(figures.get(name) ?? []), value]);
      };
      for (let round = 0; round < options.rounds; round++) {
        for (const mix of ["GET", "jobs.get"] as const) {
          const p = await measure(
            options.ms,
            primaryConn,
            mix === "GET" ? get(onPrimary.client) : job(onPrimary),
          );
          const r = await measure(
            options.ms,
            primaryConn,
            mix === "GET" ? get(onReplicas.client) : job(onReplicas),
          );
          add(`${mix} primary`, p.rate);
          add(`${mix} replica-preferred`, r.rate);
          add(`${mix} ratio`, r.rate / p.rate);
          add(`${mix} primary cpu`, p.cpuPerK);
          add(`${mix} replica-preferred cpu`, r.cpuPerK);
        }
      }
      const label = `${replicas} replica${replicas === 1 ? "" : "s"}`;
      for (const mix of ["GET", "jobs.get"]) {
        push(
          `${mix} at 50 in flight, primary (${label})`,
          "reads/s",
          figures.get(`${mix} primary`)!,
        );
        push(
          `${mix} at 50 in flight, replica-preferred (${label})`,
          "reads/s",
          figures.get(`${mix} replica-preferred`)!,
        );
        push(`${mix}: replica-preferred / primary (${label})`, "×", figures.get(`${mix} ratio`)!);
        push(
          `${mix}: primary CPU per 1k reads, primary policy (${label})`,
          "ms",
          figures.get(`${mix} primary cpu`)!,
        );
        push(
          `${mix}: primary CPU per 1k reads, replica-preferred (${label})`,
          "ms",
          figures.get(`${mix} replica-preferred cpu`)!,
        );
      }
      if (replicas === 2) {
        // The proof's cost per read: one read at a time through the client vs a raw GET there.
        const replica = cluster.nodes[1]!.endpoint;
        const raw = await RedisConnection.connect(replica);
        try {
          const viaClient: number[] = [];
          const viaRaw: number[] = [];
          const end = performance.now() + options.ms * options.rounds;
          for (let i = 0; performance.now() < end; i++) {
            const k = `bench_reads:k:${i % KEYS}`;
            let t = performance.now();
            await onReplicas.client.read(["GET", k]);
            viaClient.push((performance.now() - t) * 1000);
            t = performance.now();
            await raw.send(["GET", k]);
            viaRaw.push((performance.now() - t) * 1000);
          }
          push("one replica read at a time through the client, p50", "µs", [median(viaClient)]);
          push("one raw GET on a replica, p50", "µs", [median(viaRaw)]);
          push(
            "freshness proof per read (client p50 − raw p50)",
            "µs",
            [median(viaClient) - median(viaRaw)],
          );
        } finally {
          await raw.close();
        }
      }
    } finally {
      await primaryConn.close();
    }
  }
  return rows;
}

/** The markdown section of the replica-read figures. */
export function readRowsMarkdown(rows: readonly ReadRow[]): string[] {
  const fmt = (n: number): string =>
    Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);
  return [
    "## Reading from replicas",
    "",
    "Every node, sentinel and this process share the machine's cores: throughput ratios are bounded by them. The primary's CPU per 1,000 reads is the offload.",
    "",
    "| figure | unit | median | min–max |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.name} | ${r.unit} | ${fmt(r.median)} | ${fmt(r.min)}–${fmt(r.max)} |`
    ),
    "",
  ];
}
