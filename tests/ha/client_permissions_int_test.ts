/**
 * The client under a network permission that leaves out the node Sentinel
 * promotes (the mistake the README's old `--allow-net` example led to), and
 * under the README's fixed example that grants every node and sentinel.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { startCluster, waitFor } from "../_harness/mod.ts";
import { spawnCollecting } from "../_harness/process.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import type { LocalCluster } from "../../lib/process/local_cluster.ts";

interface Line {
  kind: "connected" | "failover" | "ok" | "error";
  failedOver?: boolean;
  to?: string;
  name?: string;
  code?: string;
  endpoint?: string;
  flag?: string;
  message?: string;
  ms?: number;
}

/** Runs the narrow client under `allowNet`, fails the primary over once it writes, returns its lines. */
async function failoverUnder(cluster: LocalCluster, allowNet: string[]): Promise<{
  lines: Line[];
  stderr: string;
  promoted: string;
}> {
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
  const proc = spawnCollecting("deno", [
    "run",
    "--quiet",
    "--no-prompt",
    `--allow-net=${allowNet.join(",")}`,
    "tests/_harness/narrow_client.ts",
    sentinels,
    cluster.masterName,
    "20000",
    "20",
  ]);
  try {
    await waitFor(() => {
      const ok = proc.stdout().includes('"kind":"ok"');
      return ok ? { done: true, value: undefined } : { done: false, observed: proc.stderr() };
    }, { what: "the narrow client to write", timeoutMs: 15_000, intervalMs: 50 });
    const old = cluster.nodes[0]!.endpoint;
    await using sentinel = await cluster.sentinels[0]!.connect();
    await sentinel.send(["SENTINEL", "FAILOVER", cluster.masterName]);
    const promoted = formatEndpoint(await cluster.waitForAgreement({ excluding: old }));
    const status = await proc.done;
    assertEquals(status.code, 0, proc.stderr());
    const lines = proc.stdout().trim().split("\n").map((l) => JSON.parse(l) as Line);
    return { lines, stderr: proc.stderr(), promoted };
  } finally {
    proc.kill("SIGKILL");
    await proc.done;
  }
}

Deno.test("RedisHaClient under --allow-net without the promoted node: failover event, then a fast NotPermittedError naming the address and the flag", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 3 });
  const primary = formatEndpoint(cluster.nodes[0]!.endpoint);
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint);
  const { lines, stderr, promoted } = await failoverUnder(cluster, [primary, ...sentinels]);
  const failover = lines.find((l) => l.kind === "failover");
  assert(failover !== undefined, `no failover event: ${JSON.stringify(lines.slice(-5))}`);
  assertEquals(failover.to, promoted);
  const after = lines.filter((l) => l.kind === "error" && l.failedOver === true);
  assert(after.length >= 20, `${after.length} failures after the failover`);
  for (const e of after) {
    assertEquals(e.name, "NotPermittedError", e.message);
    assertEquals(e.code, "NOT_PERMITTED");
    assertEquals(e.endpoint, promoted);
    assertEquals(e.flag, `--allow-net=${promoted}`);
    assert(e.message!.includes(promoted) && e.message!.includes("--allow-net"), e.message);
    // Permanent: one resolution and a refused connect, no backoff or retries.
    assert(e.ms! < 250, `a failure took ${e.ms}ms`);
  }
  const raw = (stderr + JSON.stringify(lines)).includes("NotCapable");
  assert(!raw, "Deno's raw NotCapable error reached the caller");
  // Reported once for the whole run, not once per write.
  assertEquals(lines.filter((l) => l.kind === "failover").length, 1);
});

Deno.test("RedisHaClient under the README's --allow-net (every node and sentinel) follows the failover", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 3 });
  const all = [...cluster.nodes.map((n) => n.endpoint), ...cluster.sentinelEndpoints]
    .map(formatEndpoint);
  const { lines, promoted } = await failoverUnder(cluster, all);
  const failover = lines.find((l) => l.kind === "failover");
  assertEquals(failover?.to, promoted);
  assert(
    lines.some((l) => l.kind === "ok" && l.failedOver === true),
    `no write after the failover: ${JSON.stringify(lines.slice(-5))}`,
  );
  assertEquals(lines.filter((l) => l.kind === "error" && l.name === "NotPermittedError"), []);
});
