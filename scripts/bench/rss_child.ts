// deno-lint-ignore-file no-console -- a benchmark helper: its one line of output is its result
/**
 * The memory figure of `deno task bench`: a process of its own that runs 50
 * hot SETs and 50 durable SETs in flight (WAIT per its URL's settings) for
 * the given time through `RedisHaClient`, sampling its resident set size,
 * and prints `{"peakRssMb": …, "ops": …}`.
 *
 *   deno run -P=bench scripts/bench/rss_child.ts <redis-url> <ms> <wait-replicas>
 *
 * @module
 */

import { RedisHaClient } from "../../lib/ha/client.ts";
import { configFromOptions } from "../../lib/ha/config.ts";

const [url, msText, waitText] = Deno.args;
const ms = Number(msText);
await using client = await RedisHaClient.connect(
  configFromOptions({ url, waitReplicas: Number(waitText), waitTimeoutMs: 1000 }),
);
const value = "x".repeat(64);
let peak = Deno.memoryUsage().rss;
const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 50);
let ops = 0;
const end = performance.now() + ms;
await Promise.all(Array.from({ length: 50 }, async (_, w) => {
  for (let i = 0; performance.now() < end; i++) {
    await client.command(["SET", `rss:h:${w}:${i % 1000}`, value]);
    await client.durable(["SET", `rss:d:${w}:${i % 1000}`, value], { idempotent: true });
    ops += 2;
  }
}));
clearInterval(sampler);
peak = Math.max(peak, Deno.memoryUsage().rss);
console.log(JSON.stringify({ peakRssMb: peak / 1024 / 1024, ops }));
