#!/usr/bin/env -S deno run --allow-net=127.0.0.1 --allow-run=redis-server,redis-sentinel --allow-read=.tmp --allow-write=.tmp --allow-env=MN_REDIS_*
// deno-lint-ignore-file no-console -- a benchmark program: printing its figures is its job
/**
 * State-layer benchmark (`deno task bench:state`): event appends/s and lease
 * renewals/s with 50 in flight, with WAIT off and with WAIT 1 (one replica),
 * on one machine in one run. Prints figures and ratios; asserts nothing.
 */

import { configFromOptions } from "../lib/ha/config.ts";
import { formatEndpoint } from "../lib/protocol/endpoint.ts";
import { acquireLease, type Lease } from "../lib/state/lease.ts";
import { LocalCluster } from "../lib/process/local_cluster.ts";
import { StateStore } from "../lib/state/state_store.ts";

const IN_FLIGHT = 50;
const DURATION_MS = Number(Deno.args[0] ?? 3000);

async function measure(op: (worker: number, i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  const end = performance.now() + DURATION_MS;
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, w) => {
    for (let i = 0; performance.now() < end; i++) {
      await op(w, i);
      done++;
    }
  }));
  return done / ((performance.now() - started) / 1000);
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

await Deno.mkdir(".tmp", { recursive: true });
await using cluster = await LocalCluster.start({ baseDir: ".tmp", replicas: 1, sentinels: 0 });
const url = `redis://${formatEndpoint(cluster.nodes[0]!.endpoint)}`;
const rows: [string, number][] = [];

for (const waitReplicas of [0, 1]) {
  const label = waitReplicas === 0 ? "WAIT off" : "WAIT 1";
  await using store = await StateStore.connect(
    configFromOptions({
      url,
      waitReplicas,
      waitTimeoutMs: 1000,
      namespace: `bench_w${waitReplicas}`,
    }),
  );
  const data = { agent: "a-1", step: 1, payload: "x".repeat(64) };
  rows.push([
    `event append, 50 jobs, ${label}`,
    await measure((w, i) =>
      store.events.append(`job-${w}`, { id: `e-${w}-${i}`, type: "step", data })
    ),
  ]);
  rows.push([
    `event append, 1 job, ${label}`,
    await measure((w, i) =>
      store.events.append("job-shared", { id: `s-${w}-${i}`, type: "step", data })
    ),
  ]);
  const leases: Lease[] = await Promise.all(
    Array.from(
      { length: IN_FLIGHT },
      (_, w) => acquireLease(store, `job.bench-${w}`, { holder: `w${w}`, ttlMs: 30_000 }),
    ),
  );
  rows.push([`lease renewal, ${label}`, await measure((w) => leases[w]!.renew())]);
  await Promise.all(leases.map((l) => l.release()));
}

console.log(`bench:state: ${IN_FLIGHT} in flight, ${DURATION_MS}ms per run, loopback, one replica`);
for (const [name, opsPerSecond] of rows) {
  console.log(`${name.padEnd(36)} ${fmt(opsPerSecond).padStart(9)} ops/s`);
}
const byName = new Map(rows);
console.log(
  `ratio WAIT 1 / WAIT off: events (50 jobs) ${
    (byName.get("event append, 50 jobs, WAIT 1")! / byName.get("event append, 50 jobs, WAIT off")!)
      .toFixed(2)
  }, renewals ${
    (byName.get("lease renewal, WAIT 1")! / byName.get("lease renewal, WAIT off")!).toFixed(2)
  }`,
);
