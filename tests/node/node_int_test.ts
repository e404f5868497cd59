import { assert, assertEquals } from "../_harness/assert.ts";
import { cli } from "../_harness/cli.ts";
import { startCluster, tempDir, waitFor } from "../_harness/mod.ts";
import { TwoBoxNet } from "../_harness/netns.ts";
import { type CollectingProcess, nodeStartArgv, spawnCollecting } from "../_harness/process.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";

function startNode(
  box: 1 | 2,
  env: Record<string, string>,
  sentinels: string,
  master: string,
): Deno.ChildProcess {
  const [command, ...args] = nodeStartArgv({
    box,
    sentinels,
    master,
    extra: [
      "--redis-wait-replicas",
      "1",
      "--skip-redis-ha",
      "--lease-ttl-ms",
      "1500",
      "--heartbeat-ttl-ms",
      "1500",
    ],
  });
  return new Deno.Command(command!, {
    args,
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
    nodes[leaderIndex]!.kill("SIGTERM");
    outputs[leaderIndex] = await nodes[leaderIndex]!.output();
    assertEquals(
      outputs[leaderIndex]!.code,
      0,
      new TextDecoder().decode(outputs[leaderIndex]!.stderr),
    );
    // Two replicas and WAIT 1: one box may go, so no WAIT warning at start-up.
    const stderr = new TextDecoder().decode(outputs[leaderIndex]!.stderr);
    assert(!stderr.includes("MN_REDIS_WAIT_REPLICAS is"), stderr);
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

Deno.test({
  name:
    "scripts/start_cluster_node.sh on two network-namespace boxes: join, WAIT 1, one leader, clean stop",
  ignore: !(await TwoBoxNet.available()),
  fn: async () => {
    await using net = await TwoBoxNet.create();
    await using dir = await tempDir("node-netns-");
    const sentinels = `${net.local.ip}:26379,${net.remote.ip}:26379`;
    const boxes = [net.local, net.remote];
    const common = [
      "--box1-ip",
      net.local.ip,
      "--box2-ip",
      net.remote.ip,
      "--redis-ha-mode",
      "sentinel",
      "--redis-sentinels",
      sentinels,
      "--sentinel-master",
      "mirror-neuron",
      "--redis-wait-replicas",
      "1",
      "--lease-ttl-ms",
      "3000",
      "--heartbeat-ttl-ms",
      "3000",
    ];
    const start = (i: number): CollectingProcess =>
      spawnCollecting("ip", [
        "netns",
        "exec",
        boxes[i]!.ns,
        "bash",
        "scripts/start_cluster_node.sh",
        ...common,
        "--box",
        String(i + 1),
        "--data-dir",
        `${dir.path}/box${i + 1}`,
      ]);
    const inspect = async (): Promise<
      { nodes: { id: string; status: string; leader: boolean }[] }
    > => {
      const r = await net.exec(net.local.ns, [
        "bash",
        "scripts/cluster_cli.sh",
        "--box1-ip",
        net.local.ip,
        "--box2-ip",
        net.remote.ip,
        "--self-ip",
        net.local.ip,
        "--redis-ha-mode",
        "sentinel",
        "--redis-sentinels",
        sentinels,
        "--sentinel-master",
        "mirror-neuron",
        "--",
        "inspect",
        "nodes",
        "--json",
      ]);
      if (r.code !== 0) throw new Error(r.stderr);
      return JSON.parse(r.stdout);
    };
    const nodes: CollectingProcess[] = [];
    try {
      nodes.push(start(0));
      // Box 1 bootstraps the primary; box 2 joins it once box 1's sentinel monitors it.
      await waitFor(async () => {
        const r = await net.exec(net.local.ns, [
          "redis-cli",
          "-h",
          net.local.ip,
          "-p",
          "26379",
          "SENTINEL",
          "GET-MASTER-ADDR-BY-NAME",
          "mirror-neuron",
        ]);
        return r.stdout.includes(net.local.ip)
          ? { done: true, value: undefined }
          : { done: false, observed: r.stdout + r.stderr };
      }, { what: "box 1 to bootstrap the primary", timeoutMs: 60_000, intervalMs: 250 });
      nodes.push(start(1));
      // Box 1 waits for a replica to confirm its registration (WAIT 1) until box 2 has synced.
      await waitFor(
        () =>
          nodes.every((n, i) => n.stdout().includes(`node_started id=box${i + 1}`))
            ? { done: true, value: undefined }
            : { done: false, observed: nodes.map((n) => n.stdout() + n.stderr()).join(" | ") },
        { what: "both nodes to confirm their registration", timeoutMs: 60_000, intervalMs: 250 },
      );
      const view = await waitFor(async () => {
        const v = await inspect();
        const up = v.nodes.filter((n) => n.status === "up").length;
        return up === 2 && v.nodes.some((n) => n.leader)
          ? { done: true, value: v }
          : { done: false, observed: JSON.stringify(v) };
      }, { what: "both nodes up with a leader", timeoutMs: 60_000, intervalMs: 500 });
      assertEquals(view.nodes.map((n) => n.id), ["box1", "box2"]);
      const info = await net.exec(net.local.ns, [
        "redis-cli",
        "-h",
        net.local.ip,
        "INFO",
        "replication",
      ]);
      assert(info.stdout.includes(`ip=${net.remote.ip},port=6379,state=online`), info.stdout);
    } finally {
      for (const node of nodes) node.kill("SIGTERM");
      await Promise.all(nodes.map((n) => n.done));
      await net.shutdownDaemons([26379, 6379]);
    }
    for (const node of nodes) {
      assertEquals((await node.done).code, 0, node.stderr());
      assert(
        node.stdout().includes("node_started") && node.stdout().includes("node_stopped"),
        node.stdout(),
      );
    }
  },
});

Deno.test("node start waiting for a replica says so once, in the same timestamped format as its log lines", async () => {
  await using cluster = await startCluster({ replicas: 0, sentinels: 1, quorum: 1 });
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
  const [command, ...args] = nodeStartArgv({
    box: 1,
    sentinels,
    master: cluster.masterName,
    extra: ["--redis-wait-replicas", "1", "--skip-redis-ha"],
  });
  const node = spawnCollecting(command!, args, {
    MN_REDIS_NAMESPACE: `wait_${crypto.randomUUID().slice(0, 6)}`,
  });
  try {
    // Several registration attempts, each with its WAIT, while no replica exists.
    await using primary = await cluster.nodes[0]!.connect();
    await waitFor(async () => {
      const stats = String(await primary.send(["INFO", "commandstats"], { strings: true }));
      const calls = Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      return calls >= 8
        ? { done: true, value: undefined }
        : { done: false, observed: `${calls} WAITs; ${node.stderr().slice(-300)}` };
    }, { what: "the node to retry its registration", timeoutMs: 30_000, intervalMs: 100 });
  } finally {
    node.kill("SIGTERM");
    await node.done;
  }
  const lines = node.stderr().trim().split("\n");
  const waiting = lines.filter((l) => l.includes("waiting for a replica to confirm"));
  assertEquals(waiting.length, 1, node.stderr());
  for (const line of lines) {
    assert(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) mn-redis-ha\.\w+: /.test(line),
      `not a log line: ${line}`,
    );
  }
});
