/**
 * What the benchmarks share: workers issuing an operation back to back,
 * and a Redis node's own CPU seconds.
 */

import type { RedisConnection } from "../../lib/protocol/connection.ts";
import { replyToString } from "../../lib/protocol/resp.ts";

/** Operations in flight in every throughput figure. */
export const IN_FLIGHT = 50;

/** `workers` workers issuing `op` back to back for `ms`; returns ops/s. */
export async function inFlight(
  ms: number,
  op: (worker: number, i: number) => Promise<unknown>,
  workers = IN_FLIGHT,
): Promise<number> {
  let done = 0;
  const started = performance.now();
  const end = started + ms;
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; performance.now() < end; i++) {
      await op(w, i);
      done++;
    }
  }));
  return done / ((performance.now() - started) / 1000);
}

/** CPU seconds (user + system) the node on `conn` has used, from `INFO cpu`. */
export async function serverCpuSeconds(conn: RedisConnection): Promise<number> {
  const info = replyToString(await conn.send(["INFO", "cpu"])) ?? "";
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? NaN);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? NaN);
  return user + sys;
}
