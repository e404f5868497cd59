#!/usr/bin/env -S deno run --allow-net=127.0.0.1 --allow-run=redis-server,redis-sentinel,redis-benchmark --allow-read=.tmp --allow-write=.tmp --allow-env=MN_REDIS_*
// deno-lint-ignore-file no-console -- a benchmark program: printing its figures is its job
/**
 * Throughput benchmark (`deno task bench`): 50 SETs in flight through our
 * RedisConnection, then through RedisHaClient.durable() with WAIT off and
 * WAIT 1, against `redis-benchmark -c 50 -P 16 -t set` on the same server in
 * the same run. Prints figures and ratios; asserts nothing.
 */

import { RedisHaClient } from "../lib/client.ts";
import { configFromOptions } from "../lib/config.ts";
import { RedisConnection } from "../lib/connection.ts";
import { formatEndpoint } from "../lib/endpoint.ts";
import { LocalCluster } from "../lib/local_cluster.ts";

const IN_FLIGHT = 50;
const DURATION_MS = Number(Deno.args[0] ?? 3000);

/** Runs `IN_FLIGHT` workers issuing `op` back to back for DURATION_MS; returns ops/s. */
async function measure(op: (i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  const end = performance.now() + DURATION_MS;
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, w) => {
    let i = 0;
    while (performance.now() < end) {
      await op(w * 1_000_000 + i++);
      done++;
    }
  }));
  return done / ((performance.now() - started) / 1000);
}

async function redisBenchmark(port: number): Promise<number> {
  const output = await new Deno.Command("redis-benchmark", {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-c",
      "50",
      "-P",
      "16",
      "-t",
      "set",
      "-n",
      "1000000",
      "-q",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const match = /SET: ([\d.]+) requests per second/.exec(text.replaceAll("\r", "\n"));
  if (match === null) throw new Error(`unexpected redis-benchmark output: ${text}`);
  return Number(match[1]);
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

await Deno.mkdir(".tmp", { recursive: true });
await using cluster = await LocalCluster.start({ baseDir: ".tmp", replicas: 1, sentinels: 0 });
const primary = cluster.nodes[0];
const value = "x".repeat(64);

await using conn = await RedisConnection.connect(primary.endpoint);
await measure((i) => conn.send(["SET", `warm:${i % 1000}`, value])); // warm-up
const ours = await measure((i) => conn.send(["SET", `bench:${i % 100_000}`, value]));
const reference = await redisBenchmark(primary.endpoint.port);

const url = `redis://${formatEndpoint(primary.endpoint)}`;
await using noWait = await RedisHaClient.connect(configFromOptions({ url }));
const durable0 = await measure((i) =>
  noWait.durable(["SET", `d0:${i % 100_000}`, value], { idempotent: true })
);
await using wait1 = await RedisHaClient.connect(
  configFromOptions({ url, waitReplicas: 1, waitTimeoutMs: 1000 }),
);
const durable1 = await measure((i) =>
  wait1.durable(["SET", `d1:${i % 100_000}`, value], { idempotent: true })
);

console.log(
  `bench: ${IN_FLIGHT} in flight, ${DURATION_MS}ms per run, 64-byte values, loopback, one replica`,
);
console.log(`RedisConnection SET:                  ${fmt(ours)} ops/s`);
console.log(`redis-benchmark -c 50 -P 16 -t set:   ${fmt(reference)} ops/s`);
console.log(`RedisHaClient.durable SET, WAIT off:  ${fmt(durable0)} ops/s`);
console.log(`RedisHaClient.durable SET, WAIT 1:    ${fmt(durable1)} ops/s`);
console.log(`ratio RedisConnection / redis-benchmark: ${(ours / reference).toFixed(2)}`);
console.log(`ratio durable WAIT 1 / WAIT off:         ${(durable1 / durable0).toFixed(2)}`);
