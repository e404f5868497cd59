/**
 * `inspect --watch`: plain snapshots off a terminal, in-place redraws on
 * one (a pseudo-terminal from `script`), the last failover's phases after a
 * kill -9, and an end within 1 s of Ctrl-C.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { sentinelConfig, startCluster, waitFor } from "../_harness/mod.ts";
import { MN_CLI, runProcess, spawnCollecting } from "../_harness/process.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";

function clusterEnv(config: ReturnType<typeof sentinelConfig>): Record<string, string> {
  return {
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: config.sentinels.map(formatEndpoint).join(","),
    MN_REDIS_SENTINEL_MASTER: config.sentinelMaster!,
  };
}

const SNAPSHOT = "mn-redis-ha inspect watch";

Deno.test("inspect --watch off a terminal: plain snapshots, the last failover's timed phases after a kill -9, Ctrl-C ends it within 1 s", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const env = clusterEnv(sentinelConfig(cluster));
  const watching = spawnCollecting(MN_CLI[0]!, [
    ...MN_CLI.slice(1),
    "inspect",
    "--watch",
    "--interval",
    "0.5",
    "--write-probe",
  ], env);
  try {
    await waitFor(
      () =>
        watching.stdout().split(SNAPSHOT).length > 2
          ? { done: true, value: undefined }
          : { done: false, observed: watching.stderr() || watching.stdout().slice(-300) },
      { what: "two snapshots", timeoutMs: 20_000, intervalMs: 50 },
    );
    const first = watching.stdout();
    assert(!first.includes("\x1b["), "no escape codes off a terminal");
    assert(first.includes(formatEndpoint(cluster.nodes[0]!.endpoint)), first);
    assert(first.includes("SENTINEL") && first.includes("no failover seen"), first);

    const old = cluster.nodes[0]!;
    old.kill("SIGKILL");
    await cluster.waitForAgreement({ excluding: old.endpoint, timeoutMs: 30_000 });
    await waitFor(() => {
      const last = watching.stdout().split(SNAPSHOT).pop() ?? "";
      return last.includes("promoted (+switch-master)") && last.includes("client followed") &&
          last.includes("durable writes ok again")
        ? { done: true, value: undefined }
        : { done: false, observed: last.slice(-600) };
    }, { what: "the failover's phases in a snapshot", timeoutMs: 20_000, intervalMs: 100 });
    const last = watching.stdout().split(SNAPSHOT).pop()!;
    assert(/sentinels \|[^|]*S[^|]*\|/.test(last), `a switch in the sentinel lane:\n${last}`);
    assert(/writes +\|[^|]*\.[^|]*\|/.test(last), `confirmed probe writes:\n${last}`);

    const stoppedAt = performance.now();
    watching.kill("SIGINT");
    const status = await watching.done;
    const tookMs = performance.now() - stoppedAt;
    // Interrupted, as the README's exit-code table says: 130 for SIGINT.
    assertEquals(status.code, 130, watching.stderr());
    assert(tookMs < 1000, `ended ${Math.round(tookMs)} ms after SIGINT`);
  } finally {
    watching.kill("SIGKILL");
    await watching.done;
  }
});

Deno.test("inspect --watch on a terminal redraws in place (home and clear before every snapshot)", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 1 });
  const env = clusterEnv(sentinelConfig(cluster));
  const command = [...MN_CLI, "inspect", "--watch", "--interval", "0.5"].join(" ");
  // `script` gives the CLI a pseudo-terminal; `timeout` sends Ctrl-C's SIGINT after 4 s inside it.
  const started = performance.now();
  const r = await runProcess("bash", [
    "-c",
    `script -qfec 'timeout --preserve-status -s INT 4 ${command}' /dev/null`,
  ], { env: { ...env, NO_COLOR: "" }, timeoutMs: 20_000 });
  const tookMs = performance.now() - started;
  assertEquals(r.code, 130, r.stdout + r.stderr);
  const redraws = r.stdout.split("\x1b[H\x1b[2J").length - 1;
  assert(redraws >= 2, `${redraws} redraws:\n${r.stdout.slice(0, 500)}`);
  assert(tookMs < 4000 + 5000, `took ${Math.round(tookMs)} ms`);
});
