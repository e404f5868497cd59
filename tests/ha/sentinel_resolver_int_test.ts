import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { RedisProcess, startCluster, tempDir, waitFor } from "../_harness/mod.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { MasterUnknownError, NoSentinelReachableError } from "../../lib/common/errors.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { Secret } from "../../lib/common/secret.ts";
import { SentinelResolver } from "../../lib/ha/sentinel_resolver.ts";
import { replyToNumber, replyToString } from "../../lib/protocol/resp.ts";

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

Deno.test("SentinelResolver keeps one connection per sentinel and asks each one command per resolution", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 3 });
  let connected = 0;
  let sent = 0;
  await using resolver = new SentinelResolver({
    sentinels: cluster.sentinelEndpoints,
    masterName: cluster.masterName,
    observer: { connected: () => connected++, sent: (n) => (sent += n) },
  });
  // The clients each sentinel serves, by id: not its peers' links (named sentinel-…, and
  // reconnected whenever Sentinel likes) and not the connection that asks.
  const clients = async (): Promise<string[]> => {
    const ids: string[] = [];
    for (const s of cluster.sentinels) {
      await using conn = await s.connect();
      const own = String(replyToNumber(await conn.send(["CLIENT", "ID"])));
      for (const line of (replyToString(await conn.send(["CLIENT", "LIST"])) ?? "").split("\n")) {
        const id = /(?:^| )id=(\d+)/.exec(line)?.[1];
        const name = /(?:^| )name=(\S*)/.exec(line)?.[1] ?? "";
        if (id !== undefined && id !== own && !name.startsWith("sentinel-")) {
          ids.push(`${s.endpoint.port}:${id}`);
        }
      }
    }
    return ids.sort();
  };
  await resolver.resolve({ waitAll: true });
  // The first resolution also asks for the peers (SENTINEL SENTINELS), until one has answered.
  assertEquals(connected, 3);
  const first = sent;
  assert(first >= 4 && first <= 6, `${first} commands in the first resolution`);
  // Connections just closed (the harness's, these lookups') leave the lists within moments.
  const settled = (expected: (ids: string[]) => boolean, what: string) =>
    waitFor(async () => {
      const ids = await clients();
      return expected(ids) ? { done: true, value: ids } : { done: false, observed: `${ids}` };
    }, { what, timeoutMs: 3000, intervalMs: 50 });
  const before = await settled((ids) => ids.length === 3, "the resolver's three connections");
  for (let i = 0; i < 10; i++) await resolver.resolve({ waitAll: true });
  // The same three connections served all ten resolutions.
  await settled((ids) => `${ids}` === `${before}`, "the same three connections");
  assertEquals({ connected, sent }, { connected: 3, sent: first + 10 * 3 });
  // One sentinel asked alone (a switch's announcer): one command on its open connection.
  const answer = await resolver.ask(formatEndpoint(cluster.sentinelEndpoints[1]!));
  assertEquals(answer.kind, "master");
  assertEquals({ connected, sent }, { connected: 3, sent: first + 10 * 3 + 1 });
  // A sentinel that dies is reconnected on a later resolution, not on every one.
  cluster.sentinels[2]!.kill("SIGKILL");
  await cluster.sentinels[2]!.waitExit();
  const decision = await resolver.resolve({ waitAll: true });
  assertEquals(decision.answers.filter((a) => a.kind === "error").length, 1);
});
