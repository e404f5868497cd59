import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { ConnectionError, ReplyError } from "../../lib/common/errors.ts";
import { delay } from "../../lib/common/delay.ts";
import { Boxes, mnCli } from "../_harness/boxes.ts";
import { tempDir, waitFor } from "../_harness/mod.ts";
import { TwoBoxNet } from "../_harness/netns.ts";
import { MN_CLI, nodeStartArgv, spawnCollecting } from "../_harness/process.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { replyToMap, replyToNumber, replyToString } from "../../lib/protocol/resp.ts";
import { Secret } from "../../lib/common/secret.ts";

const PASSWORDS = {
  MN_REDIS_PASSWORD: "data-secret",
  MN_REDIS_SENTINEL_PASSWORD: "sentinel-secret",
};

Deno.test("mn-redis-ha join builds a 3-box cluster from nothing, idempotently, keeping secrets out of output", async () => {
  await using boxes = await Boxes.create(3, {
    password: new Secret(PASSWORDS.MN_REDIS_PASSWORD),
    sentinelPassword: new Secret(PASSWORDS.MN_REDIS_SENTINEL_PASSWORD),
  });
  // The first box waits for the silent sentinels up to --peer-timeout, then refuses to
  // self-promote and stops the daemons it started…
  const waitStarted = performance.now();
  const refused = await mnCli(boxes.joinArgs(0, ["--peer-timeout", "2"]), PASSWORDS);
  const waited = performance.now() - waitStarted;
  assertEquals(refused.code, 1, refused.stderr);
  assert(refused.stderr.includes("--bootstrap"), refused.stderr);
  assert(refused.stderr.includes("--peer-timeout (2 s)"), refused.stderr);
  assert(waited >= 2000 && waited < 12_000, `refused after ${Math.round(waited)} ms`);
  assertEquals(
    refused.stderr.split("\n").filter((l) => l.includes("join: waiting for sentinel")).length,
    1,
    `one progress line per change:\n${refused.stderr}`,
  );
  assert(refused.stderr.includes("join: stopping what this run started"), refused.stderr);
  await assertRejects(() => boxes.redis(0), ConnectionError);
  await assertRejects(() => boxes.sentinel(0), ConnectionError);
  // …and bootstraps when told to.
  const first = await mnCli(boxes.joinArgs(0, ["--bootstrap", "--json"]), PASSWORDS);
  assertEquals(first.code, 0, first.stderr);
  assertEquals(JSON.parse(first.stdout).role, "primary");
  const primary = `127.0.0.1:${boxes.boxes[0]!.redisPort}`;
  for (const i of [1, 2]) {
    const r = await mnCli(boxes.joinArgs(i), PASSWORDS);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      r.stdout.trim(),
      `join_ok role=replica primary=${primary} redis=127.0.0.1:${
        boxes.boxes[i]!.redisPort
      } sentinel=127.0.0.1:${boxes.boxes[i]!.sentinelPort}`,
    );
  }
  // Every sentinel sees the primary, both replicas and the two other sentinels.
  await waitFor(async () => {
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      await using s = await boxes.sentinel(i);
      const m = replyToMap(await s.send(["SENTINEL", "MASTER", boxes.masterName]));
      seen.push(
        `${replyToNumber(m.get("num-slaves") ?? 0)}/${
          replyToNumber(m.get("num-other-sentinels") ?? 0)
        }`,
      );
    }
    return seen.every((x) => x === "2/2")
      ? { done: true, value: undefined }
      : { done: false, observed: seen.join(" ") };
  }, { what: "sentinels to see the whole cluster", timeoutMs: 20_000, intervalMs: 200 });
  // The data dir holding config files with secrets is private (0700); the Redis config is 0600.
  // (Sentinel rewrites its own config with the default umask whenever its state changes: the dir
  // keeps it private.)
  for (const b of boxes.boxes) {
    assertEquals((await Deno.stat(b.dataDir)).mode! & 0o777, 0o700);
    assertEquals((await Deno.stat(`${b.dataDir}/redis-${b.redisPort}.conf`)).mode! & 0o777, 0o600);
  }
  // Joining again changes nothing: daemons adopted, no new full sync.
  await using p = await boxes.redis(0);
  const syncsBefore = parseInfo(replyToString(await p.send(["INFO", "stats"])) ?? "").get(
    "sync_full",
  );
  const again = await mnCli(boxes.joinArgs(1, ["--json"]), PASSWORDS);
  assertEquals(again.code, 0, again.stderr);
  const result = JSON.parse(again.stdout);
  assertEquals([result.redisDaemon, result.sentinelDaemon, result.role], [
    "adopted",
    "adopted",
    "replica",
  ]);
  assertEquals(
    parseInfo(replyToString(await p.send(["INFO", "stats"])) ?? "").get("sync_full"),
    syncsBefore,
  );
  const firstAgain = await mnCli(boxes.joinArgs(0, ["--json"]), PASSWORDS);
  assertEquals(
    JSON.parse(firstAgain.stdout).role,
    "primary",
    "the primary re-joins as primary without --bootstrap",
  );
  assert(!`${first.stderr}${again.stderr}`.includes("data-secret"));
});

Deno.test("mn-redis-ha join warns about quorum 1 and fewer than three sentinels", async () => {
  await using boxes = await Boxes.create(2);
  const r = await mnCli(boxes.joinArgs(0, ["--bootstrap", "--quorum", "1"]));
  assertEquals(r.code, 0, r.stderr);
  assert(r.stderr.includes("quorum 1"));
  assert(r.stderr.includes("at least three sentinel voters"));
});

Deno.test("mn-redis-ha join rejects bad input with a clear message and exit 2", async () => {
  await using boxes = await Boxes.create(1);
  // A join of one loopback box, with `extra` after (a later flag wins).
  const join = (...extra: string[]): string[] => [
    "join",
    "--self-host",
    "127.0.0.1",
    "--sentinels",
    "127.0.0.1:1",
    "--master-name",
    "m",
    ...extra,
  ];
  const cases: [string[], string][] = [
    [["join", "--sentinels", "127.0.0.1:1", "--master-name", "m"], "--self-host is required"],
    [join("--sentinels", "nope"), "has no port"],
    [join("--quorum", "3"), "--quorum is 3"],
    [join("--master-name", "bad name"), "--master-name"],
    [join("--redis-port", "70000"), "--redis-port is 70000"],
    [["join", "--password", "x"], "MN_REDIS_PASSWORD"],
  ];
  for (const [args, expected] of cases) {
    const r = await mnCli(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert(r.stderr.includes(expected), `${args.join(" ")}: ${r.stderr}`);
    assert(!/^\s+at /m.test(r.stderr), r.stderr);
  }
  // A port held by something that is not Redis.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: boxes.boxes[0]!.redisPort });
  try {
    const r = await mnCli(boxes.joinArgs(0, ["--bootstrap", "--timeout-ms", "3000"]));
    assertEquals(r.code, 1, r.stderr);
    assert(r.stderr.includes(`127.0.0.1:${boxes.boxes[0]!.redisPort}`), r.stderr);
  } finally {
    listener.close();
  }
});

Deno.test({
  name:
    "mn-redis-ha join builds a cluster of two network-namespace boxes that announce their own addresses",
  ignore: !(await TwoBoxNet.available()),
  fn: async () => {
    await using net = await TwoBoxNet.create();
    await using dir = await tempDir("netns-join-");
    const sentinels = `${net.local.ip}:26379,${net.remote.ip}:26379`;
    const boxes = [net.local, net.remote];
    const join = (i: number, extra: string[] = []) =>
      net.exec(boxes[i]!.ns, [
        ...MN_CLI,
        "join",
        "--self-host",
        boxes[i]!.ip,
        "--sentinels",
        sentinels,
        "--master-name",
        "mirror-neuron",
        "--quorum",
        "1",
        "--data-dir",
        `${dir.path}/box${i + 1}`,
        "--down-after-ms",
        "1000",
        "--timeout-ms",
        "30000",
        ...extra,
      ]);
    try {
      const first = await join(0, ["--bootstrap"]);
      assertEquals(first.code, 0, first.stderr);
      assert(first.stdout.includes(`role=primary primary=${net.local.ip}:6379`), first.stdout);
      const second = await join(1);
      assertEquals(second.code, 0, second.stderr);
      assert(second.stdout.includes(`role=replica primary=${net.local.ip}:6379`), second.stdout);
      // The replica announces its box address (not loopback) to the primary and the sentinels.
      const info = await net.exec(net.local.ns, [
        "redis-cli",
        "-h",
        net.local.ip,
        "INFO",
        "replication",
      ]);
      assert(info.stdout.includes(`ip=${net.remote.ip},port=6379`), info.stdout);
      const seen = await net.exec(net.remote.ns, [
        "redis-cli",
        "-h",
        net.remote.ip,
        "-p",
        "26379",
        "SENTINEL",
        "GET-MASTER-ADDR-BY-NAME",
        "mirror-neuron",
      ]);
      assertEquals(seen.stdout.trim().split("\n"), [net.local.ip, "6379"]);
    } finally {
      await net.shutdownDaemons([26379, 6379]);
    }
  },
});

Deno.test("the documented join on three boxes in every order, at once or seconds apart, makes exactly one primary", async () => {
  const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  for (const [n, order] of orders.entries()) {
    await using boxes = await Boxes.create(3);
    // Even rounds start every join at once; odd ones start each 3 s after the previous, so the
    // first boxes wait for silent peers. No flag beyond the documented ones.
    const staggerMs = n % 2 === 0 ? 0 : 3000;
    const runs = order.map(async (i, k) => {
      await delay(k * staggerMs);
      return { box: i, run: await mnCli(boxes.joinArgs(i, ["--json"]), {}) };
    });
    const results = await Promise.all(runs);
    const roles = new Map<number, string>();
    const bootstrapped = new Map<number, boolean>();
    for (const { box, run } of results) {
      assertEquals(run.code, 0, `order ${order}, box ${box}:\n${run.stderr}`);
      const out = JSON.parse(run.stdout);
      roles.set(box, out.role);
      bootstrapped.set(box, out.bootstrapped);
    }
    const logs = `order ${order}:\n${
      results.map(({ box, run }) => `box ${box}:\n${run.stderr}`).join("\n")
    }`;
    // The box whose sentinel is listed first bootstrapped, and only it.
    assertEquals([0, 1, 2].map((i) => bootstrapped.get(i)), [true, false, false], logs);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      await using r = await boxes.redis(i);
      const info = parseInfo(replyToString(await r.send(["INFO", "replication"])) ?? "");
      seen.push(info.get("role") === "master" ? "master" : `slave-of:${info.get("master_port")}`);
    }
    // A failover while the boxes join (a loaded machine can miss down-after) is followed by the
    // joins that see it, so box 0 need not stay primary then; exactly one primary always.
    const failedOver = results.some(({ run }) =>
      run.stderr.includes("failed over during the join")
    );
    const primaryIndex = failedOver ? seen.indexOf("master") : 0;
    assert(primaryIndex >= 0, `no primary: ${seen}; ${logs}`);
    const primaryPort = String(boxes.boxes[primaryIndex]!.redisPort);
    assertEquals(
      seen,
      [0, 1, 2].map((i) => i === primaryIndex ? "master" : `slave-of:${primaryPort}`),
      logs,
    );
    if (!failedOver) {
      assertEquals([0, 1, 2].map((i) => roles.get(i)), ["primary", "replica", "replica"], logs);
    } else {
      // A box that reports itself primary is the primary.
      for (const [box, role] of roles) {
        if (role === "primary") assertEquals(box, primaryIndex, logs);
      }
    }
  }
});

Deno.test("join without a password warns loudly; --min-replicas-to-write makes a lone primary refuse writes", async () => {
  await using boxes = await Boxes.create(2);
  const extra = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "5"];
  const first = await mnCli(boxes.joinArgs(0, ["--bootstrap", ...extra]), {});
  assertEquals(first.code, 0, first.stderr);
  assert(first.stderr.includes("warning: MN_REDIS_PASSWORD is not set"), first.stderr);
  assert(first.stderr.includes("security section"), first.stderr);
  await using primary = await boxes.redis(0);
  const config = await primary.send(["CONFIG", "GET", "min-replicas-*"], { strings: true });
  assertEquals(
    Object.fromEntries(replyToMap(config)),
    { "min-replicas-to-write": "1", "min-replicas-max-lag": "5" },
  );
  // No replica yet: the primary refuses the write instead of accepting what it could lose.
  const refused = await assertRejects(
    () => primary.send(["SET", "k", "v"]),
    ReplyError,
  );
  assertEquals(refused.prefix, "NOREPLICAS");
  const second = await mnCli(boxes.joinArgs(1, extra), {});
  assertEquals(second.code, 0, second.stderr);
  await waitFor(async () => {
    try {
      await primary.send(["SET", "k", "v"]);
      return { done: true, value: undefined };
    } catch (error) {
      return { done: false, observed: String(error) };
    }
  }, { what: "writes to be accepted with one replica", timeoutMs: 10_000, intervalMs: 100 });
});

Deno.test("join --acl: least-privilege users for the runtime, replication and Sentinel; the runtime cannot reach admin commands or other keys", async () => {
  const env = { MN_REDIS_PASSWORD: "admin-secret", MN_REDIS_NAMESPACE: "acltest" };
  await using boxes = await Boxes.create(2, { password: new Secret(env.MN_REDIS_PASSWORD) });
  const joins = await Promise.all(
    [0, 1].map((i) => mnCli(boxes.joinArgs(i, ["--acl", "--json"]), env)),
  );
  for (const r of joins) assertEquals(r.code, 0, r.stderr);
  for (const r of joins) {
    assert(!r.stderr.includes("admin-secret") && !r.stdout.includes("admin-secret"));
  }
  const envFile = JSON.parse(joins[1]!.stdout).runtimeEnvFile as string;
  assertEquals((await Deno.stat(envFile)).mode! & 0o777, 0o600);
  const runtime = Object.fromEntries(
    (await Deno.readTextFile(envFile)).split("\n").filter((l) => l.includes("=")).map((l) =>
      l.split("=", 2) as [string, string]
    ),
  );
  assertEquals(runtime.MN_REDIS_USERNAME, "mn-runtime");
  assert(runtime.MN_REDIS_PASSWORD !== env.MN_REDIS_PASSWORD);

  // Replication runs as mn-replication: the replica's link is up, with no ACL failure logged.
  await using replica = await boxes.redis(1);
  await waitFor(async () => {
    const info = parseInfo(replyToString(await replica.send(["INFO", "replication"])) ?? "");
    return info.get("master_link_status") === "up"
      ? { done: true, value: undefined }
      : { done: false, observed: `link ${info.get("master_link_status")}` };
  }, { what: "the replica's link over the replication user", timeoutMs: 20_000, intervalMs: 100 });
  assertEquals(
    await replica.send(["CONFIG", "GET", "masteruser"], { strings: true }),
    ["masteruser", "mn-replication"],
  );
  // Sentinel monitors as mn-sentinel and sees the replica (it needs INFO for that).
  await using sentinel = await boxes.sentinel(0);
  await waitFor(async () => {
    const m = replyToMap(await sentinel.send(["SENTINEL", "MASTER", boxes.masterName]));
    const n = replyToNumber(m.get("num-slaves") ?? 0);
    return n === 1 ? { done: true, value: undefined } : { done: false, observed: `${n} replicas` };
  }, {
    what: "the sentinel to see the replica as mn-sentinel",
    timeoutMs: 20_000,
    intervalMs: 100,
  });
  await using primary = await boxes.redis(0);
  const logged = await primary.send(["ACL", "LOG"], { strings: true }) as unknown[];
  assertEquals(logged.length, 0, `ACL LOG: ${JSON.stringify(logged)}`);

  // The runtime works through the CLI's probe (durable writes, scripts, WAIT, ROLE, INFO)…
  const probe = await mnCli(["probe"], {
    ...runtime,
    MN_REDIS_NAMESPACE: env.MN_REDIS_NAMESPACE,
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: boxes.sentinels,
    MN_REDIS_SENTINEL_MASTER: boxes.masterName,
    MN_REDIS_WAIT_REPLICAS: "1",
  });
  assertEquals(probe.code, 0, probe.stderr);
  // …and is refused everything else.
  await using asRuntime = await RedisConnection.connect(
    { host: "127.0.0.1", port: boxes.boxes[0]!.redisPort },
    { username: "mn-runtime", password: new Secret(runtime.MN_REDIS_PASSWORD!) },
  );
  await asRuntime.send(["SET", "acltest:k", "v"]);
  for (
    const denied of [["SET", "other:k", "v"], ["FLUSHALL"], ["CONFIG", "GET", "*"], ["KEYS", "*"]]
  ) {
    const error = await assertRejects(() => asRuntime.send(denied), ReplyError);
    assertEquals(error.prefix, "NOPERM", denied.join(" "));
  }

  // Redis and Sentinel rewrite their configs (passwords inside) on a failover: still 0600.
  const before = boxes.boxes[0]!;
  await waitFor(async () => {
    // NOGOODSLAVE until the sentinel has seen the replica's link up in its INFO.
    const asked = await sentinel.send(["SENTINEL", "FAILOVER", boxes.masterName]).then(
      () => undefined,
      (error: Error) => error.message,
    );
    return asked === undefined
      ? { done: true, value: undefined }
      : { done: false, observed: asked };
  }, { what: "the sentinel to accept a failover", timeoutMs: 20_000, intervalMs: 200 });
  await waitFor(async () => {
    const rewritten: string[] = [];
    for (const b of boxes.boxes) {
      const conf = await Deno.readTextFile(`${b.dataDir}/sentinel-${b.sentinelPort}.conf`);
      const monitor = /^sentinel monitor \S+ \S+ (\d+)/m.exec(conf)?.[1];
      if (monitor !== String(boxes.boxes[1]!.redisPort)) rewritten.push(`${b.sentinelPort}`);
    }
    const demoted = await Deno.readTextFile(`${before.dataDir}/redis-${before.redisPort}.conf`);
    if (!/^replicaof /m.test(demoted)) rewritten.push("old primary's redis.conf");
    return rewritten.length === 0
      ? { done: true, value: undefined }
      : { done: false, observed: `not yet rewritten: ${rewritten.join(", ")}` };
  }, { what: "the failover to rewrite every config", timeoutMs: 30_000, intervalMs: 100 });
  for (const b of boxes.boxes) {
    for (const entry of Deno.readDirSync(b.dataDir)) {
      if (!entry.name.endsWith(".conf")) continue;
      const mode = (await Deno.stat(`${b.dataDir}/${entry.name}`)).mode! & 0o777;
      assertEquals(mode.toString(8), "600", `${b.dataDir}/${entry.name}`);
    }
  }
});

Deno.test("join --acl without MN_REDIS_PASSWORD is refused before anything starts, exit 2", async () => {
  await using boxes = await Boxes.create(1);
  const r = await mnCli(boxes.joinArgs(0, ["--acl", "--bootstrap"]), {});
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes("--acl needs MN_REDIS_PASSWORD"), r.stderr);
  await assertRejects(() => boxes.redis(0), ConnectionError);
});

Deno.test("IPv6 boxes end to end: join, status, inspect, node start and leave with [addr]:port everywhere", async () => {
  await using boxes = await Boxes.create(2, { host: "::1" });
  const joins = await Promise.all([0, 1].map((i) => mnCli(boxes.joinArgs(i, ["--json"]), {})));
  for (const r of joins) assertEquals(r.code, 0, r.stderr);
  const [p, r] = boxes.boxes;
  assertEquals(JSON.parse(joins[1]!.stdout).primary, `[::1]:${p!.redisPort}`);
  assertEquals(JSON.parse(joins[1]!.stdout).redis, `[::1]:${r!.redisPort}`);
  const env = {
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: boxes.sentinels,
    MN_REDIS_SENTINEL_MASTER: boxes.masterName,
    MN_REDIS_WAIT_REPLICAS: "1",
    MN_REDIS_NAMESPACE: "v6",
  };
  const status = await mnCli(["status", "--json"], env);
  assertEquals(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout);
  assertEquals(report.primary, `[::1]:${p!.redisPort}`);
  assertEquals(report.replicas.map((x: { address: string }) => x.address), [
    `[::1]:${r!.redisPort}`,
  ]);
  const topology = await mnCli(["inspect", "topology", "--json"], env);
  assertEquals(topology.code, 0, topology.stderr);
  const view = JSON.parse(topology.stdout);
  for (const s of view.sentinels) assertEquals(s.reports, `[::1]:${p!.redisPort}`);

  // A node on box 2 (its join adopts the daemons), registered through the IPv6 primary.
  const [nodeCommand, ...nodeArgs] = nodeStartArgv({
    host: "::1",
    box: 2,
    sentinels: boxes.sentinels,
    master: boxes.masterName,
    extra: [
      "--redis-port",
      String(r!.redisPort),
      "--sentinel-port",
      String(r!.sentinelPort),
      "--data-dir",
      r!.dataDir,
    ],
  });
  const node = spawnCollecting(nodeCommand!, nodeArgs, env);
  try {
    await waitFor(
      () =>
        Promise.resolve(
          node.stdout().includes("node_started id=box2")
            ? { done: true, value: undefined }
            : { done: false, observed: node.stderr() },
        ),
      { what: "the IPv6 node to start", timeoutMs: 30_000, intervalMs: 100 },
    );
    assert(node.stdout().includes(`primary=[::1]:${p!.redisPort}`), node.stdout());
  } finally {
    node.kill("SIGTERM");
    await node.done;
  }
  const left = await mnCli(boxes.leaveArgs(1, ["--json"]), {});
  assertEquals(left.code, 0, left.stderr);
  assertEquals(JSON.parse(left.stdout).primary, `[::1]:${p!.redisPort}`);
});

Deno.test("join waits out Sentinel-style client kills while the replication link comes up", async () => {
  // Sentinel kills a node's normal clients whenever it reconfigures it; a join that watched
  // the link over one connection then waited out its whole --timeout-ms.
  await using boxes = await Boxes.create(2);
  const first = await mnCli(boxes.joinArgs(0, ["--bootstrap"]), {});
  assertEquals(first.code, 0, first.stderr);
  {
    // The primary holds every full sync back 3 s: the link stays down while the kills go on.
    await using p = await boxes.redis(0);
    await p.send(["CONFIG", "SET", "repl-diskless-sync", "yes", "repl-diskless-sync-delay", "3"]);
  }
  let joining = true;
  const killer = (async () => {
    let kills = 0;
    while (joining) {
      try {
        await using r = await boxes.redis(1);
        const info = parseInfo(replyToString(await r.send(["INFO", "replication"])) ?? "");
        if (info.get("role") === "slave" && info.get("master_link_status") !== "up") {
          kills += replyToNumber(await r.send(["CLIENT", "KILL", "TYPE", "normal"]));
        }
      } catch {
        // Its Redis is not up yet.
      }
      await delay(100); // the fault's rhythm, not synchronisation
    }
    return kills;
  })();
  const started = performance.now();
  const second = await mnCli(boxes.joinArgs(1, ["--timeout-ms", "20000"]), {});
  const tookMs = performance.now() - started;
  joining = false;
  const kills = await killer;
  assertEquals(second.code, 0, second.stderr);
  assert(kills > 0, "no connection of the join was killed: the test did not exercise anything");
  assert(tookMs < 15_000, `join took ${Math.round(tookMs)}ms`);
});

Deno.test("join follows a failover that happens while the box joins, instead of waiting for the old primary", async () => {
  // Seen in a soak: a box rejoined while Sentinel failed over; its join waited 60 s for the
  // local sentinel to name the primary it had found, and failed.
  await using boxes = await Boxes.create(3);
  for (const i of [0, 1]) {
    const run = await mnCli(boxes.joinArgs(i, i === 0 ? ["--bootstrap"] : []), {});
    assertEquals(run.code, 0, run.stderr);
  }
  {
    // The primary holds every full sync back 30 s: box 2's link stays down until the failover
    // (which the test starts once Sentinel accepts it, however long that takes under load).
    await using p = await boxes.redis(0);
    await p.send(["CONFIG", "SET", "repl-diskless-sync", "yes", "repl-diskless-sync-delay", "30"]);
  }
  const started = performance.now();
  const joining = mnCli(boxes.joinArgs(2, ["--json", "--timeout-ms", "40000"]), {});
  await waitFor(async () => {
    await using r = await boxes.redis(2); // throws (not yet) until its Redis is up
    const info = parseInfo(replyToString(await r.send(["INFO", "replication"])) ?? "");
    return info.get("role") === "slave"
      ? { done: true, value: undefined }
      : { done: false, observed: `role ${info.get("role")}` };
  }, { timeoutMs: 20_000, intervalMs: 50, what: "box 2 to be made a replica of box 0" });
  await waitFor(async () => {
    // NOGOODSLAVE until the sentinel has seen box 1 as a healthy replica.
    await using s = await boxes.sentinel(0);
    await s.send(["SENTINEL", "FAILOVER", boxes.masterName]);
    return { done: true, value: undefined };
  }, { timeoutMs: 20_000, intervalMs: 100, what: "Sentinel to start a failover" });
  const run = await joining;
  const tookMs = performance.now() - started;
  assertEquals(run.code, 0, run.stderr);
  const newPrimary = `127.0.0.1:${boxes.boxes[1]!.redisPort}`;
  assert(run.stderr.includes(`the primary is now ${newPrimary}`), run.stderr);
  const result = JSON.parse(run.stdout);
  assertEquals([result.role, result.primary], ["replica", newPrimary]);
  await using r = await boxes.redis(2);
  const info = parseInfo(replyToString(await r.send(["INFO", "replication"])) ?? "");
  assertEquals(
    [info.get("master_port"), info.get("master_link_status")],
    [String(boxes.boxes[1]!.redisPort), "up"],
  );
  assert(tookMs < 40_000, `join took ${Math.round(tookMs)}ms`);
});
