import { assert, assertEquals } from "../_harness/assert.ts";
import { cli } from "../_harness/cli.ts";
import { startCluster, waitFor } from "../_harness/mod.ts";
import { formatEndpoint } from "../../lib/endpoint.ts";

function startNode(
  box: 1 | 2,
  env: Record<string, string>,
  sentinels: string,
  master: string,
): Deno.ChildProcess {
  return new Deno.Command("deno", {
    args: [
      "run",
      "-P=cli",
      "--quiet",
      "main.ts",
      "node",
      "start",
      "--box1-ip",
      "127.0.0.1",
      "--box2-ip",
      "127.0.0.1",
      "--box",
      String(box),
      "--redis-ha-mode",
      "sentinel",
      "--redis-sentinels",
      sentinels,
      "--sentinel-master",
      master,
      "--redis-wait-replicas",
      "1",
      "--skip-redis-ha",
      "--lease-ttl-ms",
      "1500",
      "--heartbeat-ttl-ms",
      "1500",
    ],
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("mn-redis-ha node start: two nodes, one leader, hand-over on SIGTERM, inspect shows it", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
  const env = {
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: sentinels,
    MN_REDIS_SENTINEL_MASTER: cluster.masterName,
    MN_REDIS_NAMESPACE: `node_${crypto.randomUUID().slice(0, 6)}`,
  };
  const nodes = [
    startNode(1, env, sentinels, cluster.masterName),
    startNode(2, env, sentinels, cluster.masterName),
  ];
  const outputs: (Deno.CommandOutput | undefined)[] = [undefined, undefined];
  try {
    const inspect = async () => JSON.parse((await cli(["inspect", "nodes", "--json"], env)).stdout);
    const first = await waitFor(async () => {
      const view = await inspect();
      const up = view.nodes.filter((n: { status: string }) => n.status === "up").length;
      const leader = view.nodes.find((n: { leader: boolean }) => n.leader);
      return up === 2 && leader !== undefined
        ? { done: true, value: leader.id as string }
        : { done: false, observed: JSON.stringify(view.nodes) };
    }, { what: "two nodes up with a leader", timeoutMs: 30_000, intervalMs: 200 });
    const table = await cli(["inspect", "nodes"], env);
    assertEquals(table.code, 0, table.stderr);
    assert(/box1\s+up/.test(table.stdout) && /box2\s+up/.test(table.stdout), table.stdout);
    // Stop the leader gracefully: it releases the lease and marks itself left; the other takes over.
    const leaderIndex = first === "box1" ? 0 : 1;
    nodes[leaderIndex].kill("SIGTERM");
    outputs[leaderIndex] = await nodes[leaderIndex].output();
    assertEquals(
      outputs[leaderIndex]!.code,
      0,
      new TextDecoder().decode(outputs[leaderIndex]!.stderr),
    );
    const stdout = new TextDecoder().decode(outputs[leaderIndex]!.stdout);
    assert(
      stdout.includes(`node_leader id=${first}`) && stdout.includes(`node_stopped id=${first}`),
      stdout,
    );
    const second = first === "box1" ? "box2" : "box1";
    await waitFor(async () => {
      const view = await inspect();
      const states = Object.fromEntries(
        view.nodes.map((n: { id: string; status: string }) => [n.id, n.status]),
      );
      return view.leader?.startsWith(`${second}:`) && states[first] === "left"
        ? { done: true, value: undefined }
        : { done: false, observed: JSON.stringify(view) };
    }, {
      what: `${second} to take over and ${first} to be left`,
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    const leases = JSON.parse((await cli(["inspect", "leases", "--json"], env)).stdout);
    assertEquals(leases.leases.length, 1);
    assert(leases.leases[0].holder.startsWith(`${second}:`));
  } finally {
    for (const [i, child] of nodes.entries()) {
      if (outputs[i] !== undefined) continue;
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      outputs[i] = await child.output();
    }
  }
});
