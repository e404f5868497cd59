import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { RedisProcess, startCluster, tempDir } from "../_harness/mod.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { MasterUnknownError, NoSentinelReachableError } from "../../lib/common/errors.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { Secret } from "../../lib/common/secret.ts";
import { SentinelResolver } from "../../lib/ha/sentinel_resolver.ts";

Deno.test("SentinelResolver resolves the primary when the first listed sentinel is down", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 2, quorum: 1 });
  await using resolver = new SentinelResolver({
    sentinels: [{ host: "127.0.0.1", port: freePort() }, ...cluster.sentinelEndpoints],
    masterName: cluster.masterName,
  });
  const started = performance.now();
  const decision = await resolver.resolve();
  assertEquals(formatEndpoint(decision.primary), formatEndpoint(cluster.nodes[0]!.endpoint));
  assert(performance.now() - started < 1000, "a refused sentinel must not stall resolution");
  assertEquals(decision.answers.filter((a) => a.kind === "error").length, 1);
});

Deno.test("SentinelResolver picks the real primary over a stale sentinel reporting an old one", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const old = cluster.nodes[0];
  old!.kill("SIGKILL");
  const promoted = await cluster.waitForAgreement({ excluding: old!.endpoint });
  // A sentinel that only ever knew the old primary: it keeps reporting it at epoch 0.
  await using dir = await tempDir("stale-");
  await using stale = await RedisProcess.startSentinel({
    dir: dir.path,
    monitor: { name: cluster.masterName, primary: old!.endpoint, quorum: 2 },
  });
  await using resolver = new SentinelResolver({
    sentinels: [stale.endpoint, ...cluster.sentinelEndpoints],
    masterName: cluster.masterName,
  });
  const decision = await resolver.resolve({ waitAll: true });
  assertEquals(formatEndpoint(decision.primary), formatEndpoint(promoted));
  assert(decision.configEpoch >= 1);
  assertEquals(decision.stale.map((s) => s.sentinel), [formatEndpoint(stale.endpoint)]);
  assertEquals(decision.stale[0]!.reported, formatEndpoint(old!.endpoint));
  assertEquals(decision.stale[0]!.configEpoch, 0);
});

Deno.test("SentinelResolver authenticates to password-protected sentinels and discovers peers", async () => {
  const password = new Secret("sentinel-secret");
  await using cluster = await startCluster({
    replicas: 1,
    sentinels: 3,
    sentinelPassword: password,
  });
  // Seed with one sentinel only: the others are learned from SENTINEL SENTINELS.
  await using resolver = new SentinelResolver({
    sentinels: [cluster.sentinelEndpoints[0]!],
    masterName: cluster.masterName,
    password,
  });
  const decision = await resolver.resolve();
  assertEquals(formatEndpoint(decision.primary), formatEndpoint(cluster.nodes[0]!.endpoint));
  assertEquals(
    resolver.sentinels.map(formatEndpoint).sort(),
    cluster.sentinelEndpoints.map(formatEndpoint).sort(),
  );
  await using wrong = new SentinelResolver({
    sentinels: cluster.sentinelEndpoints,
    masterName: cluster.masterName,
    password: new Secret("nope"),
  });
  const error = await assertRejects(() => wrong.resolve(), NoSentinelReachableError);
  assert(error.message.includes("MN_REDIS_SENTINEL_PASSWORD"));
  assert(!error.message.includes("nope"));
});

Deno.test("SentinelResolver reports an unknown master name and unreachable sentinels distinctly", async () => {
  await using cluster = await startCluster({ replicas: 0, sentinels: 1, quorum: 1 });
  await using unknown = new SentinelResolver({
    sentinels: cluster.sentinelEndpoints,
    masterName: "no-such-master",
  });
  const e1 = await assertRejects(() => unknown.resolve(), MasterUnknownError);
  assert(e1.message.includes('"no-such-master"'));
  await using nobody = new SentinelResolver({
    sentinels: [{ host: "127.0.0.1", port: freePort() }, { host: "127.0.0.1", port: freePort() }],
    masterName: "m",
  });
  const e2 = await assertRejects(() => nobody.resolve(), NoSentinelReachableError);
  assertEquals(e2.failures.length, 2);
});
