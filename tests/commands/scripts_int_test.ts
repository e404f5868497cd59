import { assert, assertEquals } from "../_harness/assert.ts";
import { startCluster } from "../_harness/mod.ts";
import { formatEndpoint } from "../../lib/endpoint.ts";
import { type ProcessRun, runProcess } from "../_harness/process.ts";

function bash(args: string[]): Promise<ProcessRun> {
  return runProcess("bash", args);
}

Deno.test("scripts/cluster_cli.sh turns the documented connection flags into MN_REDIS_* and runs the CLI", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 2, quorum: 1 });
  const r = await bash([
    "scripts/cluster_cli.sh",
    "--box1-ip",
    "127.0.0.1",
    "--box2-ip",
    "127.0.0.1",
    "--self-ip",
    "127.0.0.1",
    "--redis-ha-mode",
    "sentinel",
    "--redis-sentinels",
    cluster.sentinelEndpoints.map(formatEndpoint).join(","),
    "--sentinel-master",
    cluster.masterName,
    "--",
    "inspect",
    "topology",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).primary.address, formatEndpoint(cluster.nodes[0].endpoint));
});

Deno.test("the documented scripts reject bad usage with exit 2", async () => {
  const helper = await bash(["scripts/redis_ha.sh", "status"]);
  assertEquals(helper.code, 2);
  assert(helper.stderr.includes("join|leave"), helper.stderr);
  const wrapper = await bash(["scripts/cluster_cli.sh", "--box1-ip", "10.0.0.1"]);
  assertEquals(wrapper.code, 2);
  assert(wrapper.stderr.includes("nothing to run after --"), wrapper.stderr);
  const join = await bash(["scripts/redis_ha.sh", "join", "--self-host", "127.0.0.1"]);
  assertEquals(join.code, 2);
  assert(join.stderr.includes("is required"), join.stderr);
  assert(!join.stderr.includes("experimental"), "no Deno diagnostics in operator output");
});
