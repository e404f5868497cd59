/**
 * A client program for permission tests: run it under a narrow
 * `--allow-net`; it writes in a loop and prints one JSON line per failover
 * event, acknowledged write and failed write, until it has seen `errors`
 * failures (or as many acknowledged writes) after a failover, or
 * `durationMs` passed.
 *
 *   deno run --allow-net=… tests/_harness/narrow_client.ts SENTINELS MASTER DURATION_MS ERRORS
 */

import { configFromOptions, RedisHaClient, RedisHaError } from "../../mod.ts";

const [sentinels = "", masterName = "", durationMs = "20000", errors = "20"] = Deno.args;
const print = (line: Record<string, unknown>): void => {
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(line) + "\n"));
};
const config = configFromOptions({
  haMode: "sentinel",
  sentinels,
  sentinelMaster: masterName,
  reconnectAttempts: 30,
  reconnectBackoffMs: 50,
  reconnectMaxBackoffMs: 500,
  namespace: `narrow_${crypto.randomUUID().slice(0, 8)}`,
});
await using client = await RedisHaClient.connect(config);
let failedOver = false;
client.events.on("failover", ({ from, to }) => {
  failedOver = true;
  print({ kind: "failover", from, to });
});
print({ kind: "connected", primary: client.primary?.address });
const deadline = performance.now() + Number(durationMs);
let failures = 0;
let acked = 0;
for (
  let i = 0;
  performance.now() < deadline && failures < Number(errors) && acked < Number(errors);
  i++
) {
  const started = performance.now();
  try {
    await client.durable(["SET", `${config.namespace}:k${i}`, String(i)], { idempotent: true });
    if (failedOver) acked++;
    print({ kind: "ok", failedOver });
  } catch (error) {
    if (failedOver) failures++;
    print({
      kind: "error",
      failedOver,
      name: error instanceof Error ? error.name : String(error),
      code: error instanceof RedisHaError ? error.code : undefined,
      endpoint: (error as { endpoint?: string }).endpoint,
      flag: (error as { flag?: string }).flag,
      message: error instanceof Error ? error.message : String(error),
      ms: performance.now() - started,
    });
  }
  // Pacing, not synchronisation: about a hundred writes a second.
  await new Promise((resolve) => setTimeout(resolve, 10));
}
