import { assert, assertEquals } from "../_harness/assert.ts";
import { startCluster, startRedis } from "../_harness/mod.ts";
import { cli } from "../_harness/cli.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { Secret } from "../../lib/common/secret.ts";

Deno.test("mn-redis-ha probe and status work against a single Redis with a password", async () => {
  await using redis = await startRedis({ password: new Secret("pw-single") });
  const env = {
    MN_REDIS_URL: `redis://${formatEndpoint(redis.endpoint)}`,
    MN_REDIS_PASSWORD: "pw-single",
  };
  const probe = await cli(["probe"], env);
  assertEquals(probe.code, 0, probe.stderr);
  assertEquals(probe.stdout, `probe_write_read_ok primary=${formatEndpoint(redis.endpoint)}`);
  const status = await cli(["status", "--json"], env);
  assertEquals(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout);
  assertEquals(report.mode, "single");
  assertEquals(report.primary, formatEndpoint(redis.endpoint));
  assertEquals(report.role, "master");
  assertEquals(report.configEpoch, null);
  assertEquals(report.replicas, []);
  assertEquals(report.sentinels, []);
  assert(!status.stdout.includes("pw-single") && !status.stderr.includes("pw-single"));
  const text = await cli(["status"], env);
  assertEquals(text.code, 0);
  assert(text.stdout.includes(`primary:    ${formatEndpoint(redis.endpoint)} (role master`));
});

Deno.test("mn-redis-ha status pointed at a replica (single mode) says it is a replica and of which primary, exit 1", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 1 });
  const primary = formatEndpoint(cluster.nodes[0]!.endpoint);
  const replica = formatEndpoint(cluster.nodes[1]!.endpoint);
  const env = { MN_REDIS_URL: `redis://${replica}` };
  const text = await cli(["status"], env);
  assertEquals(text.code, 1, text.stderr);
  assert(
    text.stdout.includes(`replica:    ${replica} (role slave, a replica of ${primary}`),
    text.stdout,
  );
  assert(!text.stdout.includes("primary:    "), text.stdout);
  assert(text.stderr.includes(`${replica} is a replica of ${primary}`), text.stderr);
  assert(text.stderr.includes("MN_REDIS_URL"), text.stderr);
  const json = await cli(["status", "--json"], env);
  assertEquals(json.code, 1, json.stderr);
  const report = JSON.parse(json.stdout); // one JSON document: the report, with the error in it
  assertEquals([report.node, report.role, report.replicaOf, report.primary], [
    replica,
    "slave",
    primary,
    primary,
  ]);
  assertEquals(report.error.code, "NOT_PRIMARY");
});

Deno.test("mn-redis-ha probe and status work in sentinel mode, flags overriding variables", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
  const env = {
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: "127.0.0.1:1",
    MN_REDIS_SENTINEL_MASTER: "wrong",
  };
  const flags = [
    "--sentinels",
    sentinels,
    "--sentinel-master",
    cluster.masterName,
    "--wait-replicas",
    "2",
  ];
  const probe = await cli(["probe", ...flags], env);
  assertEquals(probe.code, 0, probe.stderr);
  assertEquals(
    probe.stdout,
    `probe_write_read_ok primary=${formatEndpoint(cluster.nodes[0]!.endpoint)}`,
  );
  const status = await cli(["status", "--json", ...flags], env);
  assertEquals(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout);
  assertEquals(report.mode, "sentinel");
  assertEquals(report.primary, formatEndpoint(cluster.nodes[0]!.endpoint));
  assertEquals(report.role, "master");
  assertEquals(report.configEpoch, 0);
  assertEquals(report.wait, { replicas: 2, timeoutMs: 100 });
  assertEquals(report.replicas.length, 2);
  for (const r of report.replicas) assertEquals(r.state, "online");
  assertEquals(report.sentinels.length, 3);
  for (const s of report.sentinels) {
    assertEquals(s.answered, true);
    assertEquals(s.reports, formatEndpoint(cluster.nodes[0]!.endpoint));
  }
});

Deno.test("mn-redis-ha status reports an unreachable Redis with exit 1 and no stack trace", async () => {
  const r = await cli([
    "status",
    "--url",
    `redis://127.0.0.1:${freePort()}`,
    "--reconnect-attempts",
    "2",
  ]);
  assertEquals(r.code, 1);
  assert(r.stderr.includes("Redis unavailable after 2 attempts"));
  assert(!/^\s+at /m.test(r.stderr));
});

Deno.test("mn-redis-ha probe names the sentinels when none is reachable, JSON logs on request", async () => {
  const port = freePort();
  const r = await cli([
    "probe",
    "--ha-mode",
    "sentinel",
    "--sentinels",
    `127.0.0.1:${port}`,
    "--sentinel-master",
    "mirror-neuron",
    "--reconnect-attempts",
    "2",
    "--log-format",
    "json",
  ]);
  assertEquals(r.code, 1);
  assert(r.stderr.includes(`No sentinel reachable: 127.0.0.1:${port}`));
  const logLine = r.stderr.split("\n").find((l) => l.startsWith("{"));
  assert(logLine !== undefined, r.stderr);
  const record = JSON.parse(logLine);
  assertEquals(record.level, "warning");
  assertEquals(record.attempt, 1);
});

Deno.test("mn-redis-ha inspect topology prints a table and stable JSON with the operational warnings", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 2, quorum: 1 });
  const env = {
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: cluster.sentinelEndpoints.map(formatEndpoint).join(","),
    MN_REDIS_SENTINEL_MASTER: cluster.masterName,
  };
  const table = await cli(["inspect", "topology"], env);
  assertEquals(table.code, 0, table.stderr);
  assert(
    table.stdout.includes(`primary  ${formatEndpoint(cluster.nodes[0]!.endpoint)}  role master`),
    table.stdout,
  );
  assert(
    /SENTINEL\s+REACHABLE\s+REPORTS\s+EPOCH\s+QUORUM\s+CKQUORUM/.test(table.stdout),
    table.stdout,
  );
  assert(table.stdout.includes(formatEndpoint(cluster.nodes[1]!.endpoint)), table.stdout);
  // Warnings are diagnostics: on stderr, never mixed into the table on stdout.
  for (const w of ["only 2 sentinel(s)", "quorum is 1", "no leader"]) {
    assert(table.stderr.includes(`warning: ${w}`), table.stderr);
    assert(!table.stdout.includes(`warning: ${w}`), table.stdout);
  }
  assert(!table.stderr.includes("\x1b["), "no colour when not a terminal");
  // A replica promoted by hand: two nodes claim master.
  await using r = await cluster.nodes[1]!.connect();
  await r.send(["REPLICAOF", "NO", "ONE"]);
  const json = await cli(["inspect", "topology", "--json"], env);
  assertEquals(json.code, 0, json.stderr);
  const view = JSON.parse(json.stdout);
  for (
    const key of [
      "mode",
      "primary",
      "replicas",
      "sentinels",
      "claimingMaster",
      "leader",
      "warnings",
    ]
  ) assert(key in view, key);
  assertEquals(view.claimingMaster.length, 2);
  assert(
    view.warnings.some((w: string) => w.includes("more than one node claims to be master")),
    json.stdout,
  );
});

Deno.test("--db is checked by the server: an index it lacks is a configuration error naming --db, exit 2", async () => {
  await using redis = await startRedis();
  const url = `redis://${formatEndpoint(redis.endpoint)}`;
  const ok = await cli(["status", "--url", url, "--db", "15"]);
  assertEquals(ok.code, 0, ok.stderr);
  const r = await cli(["status", "--url", url, "--db", "16", "--json"]);
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes("--db (MN_REDIS_DB)"), r.stderr);
  assert(r.stderr.includes("database 16 does not exist"), r.stderr);
  const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  assertEquals(out.error.code, "CONFIG");
});

Deno.test("status --json that cannot reach Redis prints a JSON error object on stdout, exit 1", async () => {
  const port = await freePort();
  const r = await cli([
    "status",
    "--json",
    "--url",
    `redis://127.0.0.1:${port}`,
    "--reconnect-attempts",
    "1",
  ]);
  assertEquals(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  assert(out.error.code.length > 0 && out.error.message.includes(`127.0.0.1:${port}`), r.stdout);
});

Deno.test("status warns when MN_REDIS_WAIT_REPLICAS needs every replica (one box down stops durable writes)", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  const url = `redis://${formatEndpoint(cluster.nodes[0]!.endpoint)}`;
  const tight = await cli(["status", "--url", url, "--wait-replicas", "1", "--json"]);
  assertEquals(tight.code, 0, tight.stderr);
  assert(tight.stderr.includes("warning: MN_REDIS_WAIT_REPLICAS is 1"), tight.stderr);
  assert(tight.stderr.includes("losing one box stops every durable write"), tight.stderr);
  assertEquals(JSON.parse(tight.stdout).warnings.length, 1);
  const off = await cli(["status", "--url", url, "--wait-replicas", "0"]);
  assertEquals(off.code, 0, off.stderr);
  assert(!off.stderr.includes("warning:"), off.stderr);
});
