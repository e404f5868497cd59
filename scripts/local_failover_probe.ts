#!/usr/bin/env -S deno run --allow-net=127.0.0.1 --allow-run=redis-server,redis-sentinel --allow-read=.tmp --allow-write=.tmp --allow-env=MN_REDIS_*
/**
 * The local Sentinel failover smoke (`deno task smoke`): 3 redis + 3 sentinels
 * on free loopback ports under `.tmp/`, kill -9 of the primary, and a write
 * and read through the promoted replica. Markers go to stdout, progress to
 * stderr; every process and temp dir is cleaned up on success, failure or
 * Ctrl-C. Exits 0 only when the smoke passed.
 */

import { runLocalSmoke } from "../lib/commands/smoke_local.ts";

const abort = new AbortController();
const onSignal = (): void => abort.abort(new Error("interrupted"));
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
const encoder = new TextEncoder();
const out = (line: string): void => {
  const stream = line.startsWith("step: ") ? Deno.stderr : Deno.stdout;
  stream.writeSync(encoder.encode(line + "\n"));
};

let code = 0;
try {
  await Deno.mkdir(".tmp", { recursive: true });
  const result = await runLocalSmoke({ baseDir: ".tmp", report: out, signal: abort.signal });
  out(`local_failover_smoke_ok wall_ms=${Math.round(result.wallMs)}`);
} catch (error) {
  Deno.stderr.writeSync(
    encoder.encode(
      `local failover smoke FAILED: ${error instanceof Error ? error.message : error}\n`,
    ),
  );
  code = 1;
} finally {
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}
Deno.exit(code);
