/**
 * `service install|uninstall`: the units pass `systemd-analyze verify`, keep
 * secrets in a 0600 environment file, and bring a box whose processes all
 * died back into the cluster when their commands run (as systemd would at
 * boot: Redis, then Sentinel, then the node).
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { type Box, Boxes, mnCli } from "../_harness/boxes.ts";
import { cli } from "../_harness/cli.ts";
import { tempDir, waitFor } from "../_harness/mod.ts";
import { killDaemons, runProcess, spawnCollecting } from "../_harness/process.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { replyToMap, replyToNumber, replyToString } from "../../lib/protocol/resp.ts";
import { Secret } from "../../lib/common/secret.ts";

const PASSWORD = "unit-secret";

/** The install's box flags for `box`. */
function boxFlagsOf(box: Box): string[] {
  return [
    "--data-dir",
    box.dataDir,
    "--redis-port",
    String(box.redisPort),
    "--sentinel-port",
    String(box.sentinelPort),
  ];
}

/** `node start` flags of box 1 on loopback, as a node unit takes them after `--`. */
const BOX1_NODE = ["--box1-ip", "127.0.0.1", "--box2-ip", "127.0.0.1", "--box", "1"];

/** One `KEY=VALUE` line of an EnvironmentFile: values may be double-quoted. */
function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m === null) continue;
    env[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
  }
  return env;
}

/** Splits an `ExecStart=` command line as systemd does (quotes, `%%`, `$$`). */
function parseExecStart(line: string): string[] {
  const args: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of line.matchAll(re)) {
    const raw = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!;
    args.push(raw.replaceAll("%%", "%").replaceAll("$$", "$"));
  }
  return args;
}

/** A unit file's settings: key to values (a key may repeat). */
function parseUnit(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m === null) continue;
    settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
  }
  return settings;
}

Deno.test("service install --dry-run writes units that verify and that bring a box whose processes all died back into the cluster", async () => {
  await using work = await tempDir("service-");
  await using boxes = await Boxes.create(2, { password: new Secret(PASSWORD) });
  const env = { MN_REDIS_PASSWORD: PASSWORD, MN_REDIS_NAMESPACE: "svc" };
  const joins = await Promise.all([0, 1].map((i) => mnCli(boxes.joinArgs(i), env)));
  for (const r of joins) assertEquals(r.code, 0, r.stderr);
  const box = boxes.boxes[1]!;

  // The node unit runs this wrapper, as it would run /usr/local/bin/mn-redis-ha.
  const binary = `${Deno.cwd()}/${work.path}/mn-redis-ha`;
  await Deno.writeTextFile(
    binary,
    `#!/bin/sh\ncd '${Deno.cwd()}' && exec deno run --config deno.json -P=cli --quiet --no-prompt main.ts "$@"\n`,
    { mode: 0o755 },
  );
  const unitDir = `${work.path}/units`;
  const boxFlags = [
    "--dry-run",
    "--unit-dir",
    unitDir,
    ...boxFlagsOf(box),
  ];
  const nodeArgs = [
    "--box1-ip",
    "127.0.0.1",
    "--box2-ip",
    "127.0.0.1",
    "--box",
    "2",
    "--redis-ha-mode",
    "sentinel",
    "--redis-sentinels",
    boxes.sentinels,
    "--sentinel-master",
    boxes.masterName,
    // --redis-port, --sentinel-port and --data-dir come from the install's own flags.
    "--heartbeat-ttl-ms",
    "1500",
    "--lease-ttl-ms",
    "1500",
    "--log-file",
    `${work.path}/node.log`,
  ];
  const installed = await mnCli([
    "service",
    "install",
    "--json",
    ...boxFlags,
    "--binary",
    binary,
    "--",
    ...nodeArgs,
  ], env);
  assertEquals(installed.code, 0, installed.stderr);
  const result = JSON.parse(installed.stdout);
  assertEquals(result.enabled, false);
  const names = result.units.map((u: string) => u.split("/").pop()).sort();
  assertEquals(names, [
    `mn-node-${box.redisPort}.service`,
    `mn-redis-${box.redisPort}.service`,
    `mn-sentinel-${box.sentinelPort}.service`,
  ]);

  // systemd accepts them; secrets live only in the 0600 environment file.
  const verify = await runProcess("systemd-analyze", ["verify", ...result.units]);
  assertEquals(verify.code, 0, verify.stderr + verify.stdout);
  for (const unit of result.units) assert(!(await Deno.readTextFile(unit)).includes(PASSWORD));
  assertEquals((await Deno.stat(result.environmentFile)).mode! & 0o777, 0o600);
  const units = new Map<string, Map<string, string[]>>();
  for (const unit of result.units as string[]) {
    units.set(unit.split("/").pop()!.split("-")[1]!, parseUnit(await Deno.readTextFile(unit)));
  }
  const node = units.get("node")!;
  assertEquals(node.get("Restart"), ["on-failure"]);
  // The node joins the box the units are for (absolute paths: systemd starts units in /).
  const execArgs = parseExecStart(node.get("ExecStart")![0]!);
  const valueOf = (flag: string): string | undefined => execArgs[execArgs.indexOf(flag) + 1];
  assertEquals(valueOf("--redis-port"), String(box.redisPort));
  assertEquals(valueOf("--sentinel-port"), String(box.sentinelPort));
  assertEquals(valueOf("--data-dir"), await Deno.realPath(box.dataDir));
  assertEquals(valueOf("--log-file"), `${Deno.cwd()}/${work.path}/node.log`);
  // The daemons rewrite their configs (passwords inside) under a private umask.
  assertEquals(units.get("redis")!.get("UMask"), ["0077"]);
  assertEquals(units.get("sentinel")!.get("UMask"), ["0077"]);
  assert(node.get("After")![0]!.includes(`mn-redis-${box.redisPort}.service`));
  assert(units.get("sentinel")!.get("After")![0]!.includes(`mn-redis-${box.redisPort}.service`));

  // Run the node from its unit, then kill -9 every process of the box.
  const nodeEnv: Record<string, string> = {};
  for (const file of node.get("EnvironmentFile")!) {
    Object.assign(nodeEnv, parseEnvironmentFile(await Deno.readTextFile(file)));
  }
  assertEquals(nodeEnv.MN_REDIS_PASSWORD, PASSWORD);
  const [command, ...args] = parseExecStart(node.get("ExecStart")![0]!);
  const inspectEnv = {
    ...env,
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: boxes.sentinels,
    MN_REDIS_SENTINEL_MASTER: boxes.masterName,
  };
  const box2Up = (): Promise<void> =>
    waitFor(async () => {
      const view = JSON.parse((await cli(["inspect", "nodes", "--json"], inspectEnv)).stdout);
      const box2 = view.nodes.find((n: { id: string }) => n.id === "box2");
      return box2?.status === "up"
        ? { done: true, value: undefined }
        : { done: false, observed: JSON.stringify(view.nodes) };
    }, { what: "node box2 up", timeoutMs: 30_000, intervalMs: 200 });
  // The unit's executable is a shell wrapper here: run it through bash (the int permission set).
  let nodeProcess = spawnCollecting("bash", [command!, ...args], nodeEnv);
  try {
    await box2Up();
    const pids: number[] = [];
    for (const kind of ["redis", "sentinel"] as const) {
      const pidFile = units.get(kind)!.get("PIDFile")![0]!;
      pids.push(Number((await Deno.readTextFile(pidFile)).trim()));
    }
    await killDaemons(pids);
    nodeProcess.kill("SIGKILL");
    await nodeProcess.done;

    // Start the units' commands in their order: Redis, Sentinel (both fork), then the node.
    for (const kind of ["redis", "sentinel"]) {
      const [daemon, ...daemonArgs] = parseExecStart(units.get(kind)!.get("ExecStart")![0]!);
      const started = await new Deno.Command(daemon!, {
        args: daemonArgs,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output();
      assertEquals(started.code, 0, `${kind} unit command`);
    }
    nodeProcess = spawnCollecting("bash", [command!, ...args], nodeEnv);
    await box2Up();
    // The box is back: its Redis replicates from the primary and box 1's sentinel counts it.
    await using redis = await boxes.redis(1);
    await waitFor(async () => {
      const info = parseInfo(replyToString(await redis.send(["INFO", "replication"])) ?? "");
      return info.get("master_link_status") === "up"
        ? { done: true, value: undefined }
        : { done: false, observed: `${info.get("role")} link ${info.get("master_link_status")}` };
    }, { what: "box 2's replica link", timeoutMs: 20_000, intervalMs: 100 });
    // Sentinels find each other through hello messages every 2 s: wait for box 2's to be seen.
    await using sentinel = await boxes.sentinel(0);
    await waitFor(async () => {
      const master = replyToMap(await sentinel.send(["SENTINEL", "MASTER", boxes.masterName]));
      const others = replyToNumber(master.get("num-other-sentinels") ?? 0);
      return others === 1
        ? { done: true, value: undefined }
        : { done: false, observed: `${others} other sentinels` };
    }, { what: "box 1's sentinel to count box 2's", timeoutMs: 10_000, intervalMs: 100 });
    // --log-file kept the node's lines.
    assert((await Deno.readTextFile(`${work.path}/node.log`)).includes("node_started id=box2"));
  } finally {
    nodeProcess.kill("SIGTERM");
    await nodeProcess.done;
  }

  const removed = await mnCli([
    "service",
    "uninstall",
    ...boxFlags,
  ], env);
  assertEquals(removed.code, 0, removed.stderr);
  assertEquals([...Deno.readDirSync(unitDir)].length, 0);
  assert(!(await Deno.stat(result.environmentFile).then(() => true, () => false)));
});

Deno.test("service install refuses a box that never joined and bad node flags, exit 2", async () => {
  await using work = await tempDir("service-");
  const never = await mnCli([
    "service",
    "install",
    "--dry-run",
    "--unit-dir",
    `${work.path}/units`,
    "--data-dir",
    work.path,
  ]);
  assertEquals(never.code, 2, never.stderr);
  assert(never.stderr.includes("run join first"), never.stderr);
  const bad = await mnCli([
    "service",
    "install",
    "--dry-run",
    "--unit-dir",
    `${work.path}/units`,
    "--",
    "--box",
    "2",
    "--no-such-flag",
  ]);
  assertEquals(bad.code, 2, bad.stderr);
  assert(bad.stderr.includes("node start flags after --"), bad.stderr);
});

Deno.test("service install checks the node flags exactly as node start does and refuses a node for another box, writing nothing", async () => {
  await using work = await tempDir("service-check-");
  await using boxes = await Boxes.create(1);
  const joined = await mnCli(boxes.joinArgs(0, ["--bootstrap"]));
  assertEquals(joined.code, 0, joined.stderr);
  const box = boxes.boxes[0]!;
  const unitDir = `${work.path}/units`;
  const install = (nodeArgs: string[], extra: string[] = []) =>
    mnCli([
      "service",
      "install",
      "--dry-run",
      "--unit-dir",
      unitDir,
      ...boxFlagsOf(box),
      ...extra,
      "--",
      ...nodeArgs,
    ]);
  // Flags that parse but that node start refuses: the same refusal, at install time.
  for (
    const nodeArgs of [
      ["--box1-ip", "127.0.0.1", "--box", "3"],
      ["--box1-ip", "127.0.0.1", "--box2-ip", "127.0.0.1", "--box", "3"],
      ["--box1-ip", "127.0.0.1", "--box2-ip", "127.0.0.1", "--box", "1", "--lease-ttl-ms", "5"],
      ["--box1-ip", "127.0.0.1", "--box2-ip", "127.0.0.1", "--box", "1", "--wait-timeout-ms", "x"],
    ]
  ) {
    const refused = await install(nodeArgs);
    const node = await mnCli(["node", "start", ...nodeArgs]);
    assertEquals(refused.code, 2, refused.stderr);
    assertEquals(node.code, 2, node.stderr);
    // node start's own refusal: its first line, or the problem under a configuration heading.
    const lines = node.stderr.split("\n");
    const reason = lines[0]!.endsWith("):")
      ? lines[1]!.trim()
      : lines[0]!.replace(/^mn-redis-ha node start: /, "");
    assert(reason.length > 0 && refused.stderr.includes(reason), `${refused.stderr}\n${reason}`);
    assert(refused.stderr.includes("node start flags after --"), refused.stderr);
  }
  const other = await install(
    ["--box1-ip", "127.0.0.1", "--box2-ip", "127.0.0.1", "--box", "1", "--redis-port", "1"],
  );
  assertEquals(other.code, 2, other.stderr);
  assert(other.stderr.includes("--redis-port"), other.stderr);
  assert(other.stderr.includes(String(box.redisPort)), other.stderr);
  assertEquals(
    await Deno.stat(unitDir).then(() => [...Deno.readDirSync(unitDir)].length, () => 0),
    0,
  );

  // A real install on a host without systemd (this one) fails before writing anything.
  const real = await mnCli([
    "service",
    "install",
    "--unit-dir",
    unitDir,
    ...boxFlagsOf(box),
    "--binary",
    "/usr/local/bin/mn-redis-ha",
    "--",
    ...BOX1_NODE,
  ]);
  assertEquals(real.code, 1, real.stderr);
  assert(real.stderr.includes("systemd does not run on this host"), real.stderr);
  assert(real.stderr.includes("--dry-run"), real.stderr);
  assertEquals(
    await Deno.stat(unitDir).then(() => [...Deno.readDirSync(unitDir)].length, () => 0),
    0,
  );
  assert(!(await Deno.stat(`${box.dataDir}/mn-node.env`).then(() => true, () => false)));
});

Deno.test("service install --root enables the units with systemctl (offline, into an image root); uninstall disables and removes them", async () => {
  await using work = await tempDir("service-root-");
  await using boxes = await Boxes.create(1);
  const joined = await mnCli(boxes.joinArgs(0, ["--bootstrap"]));
  assertEquals(joined.code, 0, joined.stderr);
  const box = boxes.boxes[0]!;
  const root = `${work.path}/image`;
  const boxFlags = [
    "--root",
    root,
    ...boxFlagsOf(box),
  ];
  const installed = await mnCli([
    "service",
    "install",
    ...boxFlags,
    "--binary",
    "/usr/local/bin/mn-redis-ha",
    "--",
    "--box1-ip",
    "127.0.0.1",
    "--box2-ip",
    "127.0.0.2",
    "--box",
    "1",
  ]);
  assertEquals(installed.code, 0, installed.stderr);
  assert(installed.stdout.includes("enabled=true"), installed.stdout);
  const wants = `${root}/etc/systemd/system/multi-user.target.wants`;
  const enabled = [...Deno.readDirSync(wants)].map((e) => e.name).sort();
  assertEquals(enabled, [
    `mn-node-${box.redisPort}.service`,
    `mn-redis-${box.redisPort}.service`,
    `mn-sentinel-${box.sentinelPort}.service`,
  ]);
  const removed = await mnCli(["service", "uninstall", ...boxFlags]);
  assertEquals(removed.code, 0, removed.stderr);
  // systemctl disable removes the links (and the emptied .wants directory).
  const left = await Deno.stat(wants).then(() => [...Deno.readDirSync(wants)].length, () => 0);
  assertEquals(left, 0);
  assertEquals(
    [...Deno.readDirSync(`${root}/etc/systemd/system`)].filter((e) => e.isFile).length,
    0,
  );
});
