/**
 * Runs every TypeScript block of the README and every JSDoc example as a doc
 * test (`deno test --doc`) against a real local cluster — a primary, a
 * replica and a sentinel — with the `MN_REDIS_*` settings an application
 * would have, so the examples are run, not only type-checked.
 *
 * Usage: `deno task test:doc`
 */

import { LocalCluster } from "../lib/process/local_cluster.ts";
import { formatEndpoint } from "../lib/protocol/endpoint.ts";

const TARGETS = ["mod.ts", "lib/", "README.md"];

await Deno.mkdir(".tmp", { recursive: true });
await using cluster = await LocalCluster.start({ baseDir: ".tmp", replicas: 1, sentinels: 1 });
const env = {
  MN_REDIS_HA_MODE: "sentinel",
  MN_REDIS_SENTINELS: cluster.sentinelEndpoints.map(formatEndpoint).join(","),
  MN_REDIS_SENTINEL_MASTER: cluster.masterName,
  MN_REDIS_WAIT_REPLICAS: "1",
  MN_REDIS_NAMESPACE: `doctest_${Date.now()}`,
};
const child = new Deno.Command("deno", {
  args: ["test", "--doc", "-P=doc", "--no-prompt", "--quiet", ...TARGETS],
  env,
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
const { code } = await child.status;
if (code !== 0) Deno.exitCode = code;
