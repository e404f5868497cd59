import { assert, assertEquals, assertThrows } from "../_harness/assert.ts";
import { cli } from "../_harness/cli.ts";
import { parseCommandFlags, parseFlags } from "../../lib/cli/command_spec.ts";
import { COMMANDS } from "../../lib/cli/command_table.ts";
import { UsageError } from "../../lib/common/errors.ts";

function assertNoStack(text: string): void {
  assert(!/^\s+at .+:\d+:\d+/m.test(text), `stack trace in output:\n${text}`);
}

Deno.test("runCli() with no command prints usage and exits 2", async () => {
  const r = await cli([]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes("Usage: mn-redis-ha <command>"));
  assertEquals(r.stdout, "");
});

Deno.test("runCli() --help lists the commands on stdout", async () => {
  const r = await cli(["--help"]);
  assertEquals(r.code, 0);
  assert(r.stdout.includes("status") && r.stdout.includes("probe"));
});

Deno.test("runCli() <command> --help explains every flag with an example", async () => {
  for (const command of ["status", "probe"]) {
    const r = await cli([command, "--help"]);
    assertEquals(r.code, 0);
    assert(r.stdout.includes("MN_REDIS_WAIT_REPLICAS"), command);
    assert(r.stdout.includes("Example"), command);
  }
});

Deno.test("runCli() rejects an unknown command with usage and exit 2", async () => {
  const r = await cli(["frobnicate"]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes('unknown command "frobnicate"'));
  assert(r.stderr.includes("Usage:"));
});

Deno.test("runCli() rejects an unknown flag with usage and exit 2", async () => {
  const r = await cli(["status", "--bogus"]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes("--bogus"));
  assert(r.stderr.includes("Usage: mn-redis-ha status"));
  assertNoStack(r.stderr);
});

Deno.test("runCli() refuses a password flag and says where passwords go", async () => {
  const r = await cli(["probe", "--password", "hunter2"]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes("MN_REDIS_PASSWORD"));
});

Deno.test("runCli() reports every config problem at once, naming variable or flag, exit 2", async () => {
  const r = await cli(["status", "--ha-mode", "sentinel", "--wait-replicas=-2"], {
    MN_REDIS_RECONNECT_BACKOFF_MS: "500",
    MN_REDIS_RECONNECT_MAX_BACKOFF_MS: "100",
    MN_REDIS_PASSWORD: "hunter2",
  });
  assertEquals(r.code, 2);
  assert(r.stderr.includes("--wait-replicas (MN_REDIS_WAIT_REPLICAS)"));
  assert(r.stderr.includes("MN_REDIS_SENTINELS: required in sentinel mode"));
  assert(r.stderr.includes("MN_REDIS_SENTINEL_MASTER: required in sentinel mode"));
  assert(r.stderr.includes("MN_REDIS_RECONNECT_MAX_BACKOFF_MS"));
  assert(!r.stderr.includes("hunter2"));
  assertNoStack(r.stderr);
  assertEquals(r.stdout, "");
});

Deno.test("runCli() rejects a bad --log-format", async () => {
  const r = await cli(["status", "--log-format", "xml"]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes("expected text or json"));
});

Deno.test("runCli() gives every subcommand --help with an example", async () => {
  const { COMMANDS } = await import("../../lib/cli/command_table.ts");
  for (const command of COMMANDS) {
    const r = await cli([...command.name.split(" "), "--help"]);
    assertEquals(r.code, 0, command.name);
    assert(r.stdout.includes(`Usage: mn-redis-ha ${command.name}`), command.name);
    assert(
      r.stdout.includes("Example:\n  mn-redis-ha") || r.stdout.includes("Example:\n  MN_REDIS"),
      command.name,
    );
  }
});

Deno.test("runCli() rejects bad operator input with exit 2 and a message naming the flag", async () => {
  const twoBox = (...extra: string[]): string[] => [
    "smoke",
    "two-box",
    "--remote-host",
    "h",
    "--local-ip",
    "10.0.0.1",
    "--remote-ip",
    "10.0.0.2",
    ...extra,
  ];
  const cases: [string[], string][] = [
    [["node"], '"node" needs a subcommand: node start'],
    [["inspect", "everything"], "unknown command"],
    [["leave", "--self-host", "127.0.0.1", "--master-name", "m"], "--sentinels is required"],
    [[
      "leave",
      "--self-host",
      "127.0.0.1",
      "--sentinels",
      "127.0.0.1:26379",
      "--master-name",
      "m",
      "--redis-port",
      "0",
    ], "--redis-port is 0"],
    [["node", "start", "--box1-ip", "10.0.0.1", "--box2-ip", "10.0.0.2"], "--box is required"],
    [
      ["node", "start", "--box1-ip", "10.0.0.1", "--box2-ip", "10.0.0.2", "--box", "3"],
      '--box is "3"',
    ],
    [[
      "node",
      "start",
      "--box1-ip",
      "10.0.0.1",
      "--box2-ip",
      "10.0.0.2",
      "--box",
      "1",
      "--redis-ha-mode",
      "cluster",
    ], '--ha-mode is "cluster"'],
    [
      ["smoke", "two-box", "--local-ip", "10.0.0.1", "--remote-ip", "10.0.0.2"],
      "--remote-host is required",
    ],
    [twoBox("--remote-network", "overlay"), "--remote-network"],
    [twoBox("--initial-primary", "both"), "--initial-primary"],
    [["smoke", "local", "--docker"], "--docker is not supported"],
    [["inspect", "jobs", "--status", "bogus"], "--status"],
    [["inspect", "jobs", "--limit", "0"], "--limit is 0"],
  ];
  for (const [args, expected] of cases) {
    const r = await cli(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert(r.stderr.includes(expected), `${args.join(" ")}: ${r.stderr}`);
    assertNoStack(r.stderr);
  }
});

Deno.test("parseFlags() is strict: values after or inside their flag, switches bare, everything else refused", () => {
  const options = { url: { type: "string" }, json: { type: "boolean" } } as const;
  assertEquals(parseFlags(["--url", "redis://h:1", "--json"], options), {
    url: "redis://h:1",
    json: true,
  });
  assertEquals(parseFlags(["--url=redis://h:1/0?x=y=z"], options), { url: "redis://h:1/0?x=y=z" });
  assertEquals(parseFlags(["--url", "-2"], options), { url: "-2" });
  assertEquals(parseFlags(["--url", "a", "--url", "b"], options), { url: "b" }, "last one wins");
  for (
    const [args, says] of [
      [["--bogus"], 'unknown flag "--bogus"'],
      [["--url"], "--url needs a value"],
      [["--url", "--json"], "--url needs a value"],
      [["--json=yes"], "--json is a switch"],
      [["stray"], 'unexpected argument "stray"'],
      [["-u", "x"], 'unexpected argument "-u"'],
      [["--constructor"], 'unknown flag "--constructor"'],
    ] as const
  ) {
    const error = assertThrows(() => parseFlags(args, options), UsageError);
    assert(error.message.includes(says), `${args.join(" ")}: ${error.message}`);
  }
});

Deno.test("node start: one flag per setting, named after its variable; the documentation's --redis-* spellings are hidden aliases", async () => {
  const help = await cli(["node", "start", "--help"]);
  assert(
    help.stdout.includes("--wait-replicas N") && help.stdout.includes("--ha-mode"),
    help.stdout,
  );
  assert(!help.stdout.includes("--redis-wait-replicas"), "aliases are not shown in help");
  const node = COMMANDS.find((c) => c.name === "node start")!;
  const aliased = parseCommandFlags(node, [
    "--redis-wait-replicas",
    "1",
    "--redis-ha-mode",
    "sentinel",
  ]);
  assertEquals([aliased["wait-replicas"], aliased["ha-mode"]], ["1", "sentinel"]);
  assert(!("redis-wait-replicas" in aliased));
  const both = assertThrows(
    () => parseCommandFlags(node, ["--wait-replicas", "1", "--redis-wait-replicas", "2"]),
    UsageError,
  );
  assert(both.message.includes("--redis-wait-replicas is --wait-replicas"), both.message);
  assertEquals(
    parseCommandFlags(node, [
      "--wait-replicas",
      "1",
      "--redis-wait-replicas",
      "1",
    ])["wait-replicas"],
    "1",
  );
});

Deno.test("runCli(): a bad read policy or lag bound is a configuration error naming it, exit 2", async () => {
  const fromEnv = await cli(["inspect", "nodes"], { MN_REDIS_READ_FROM: "nearest" });
  assertEquals(fromEnv.code, 2);
  assert(fromEnv.stderr.includes("MN_REDIS_READ_FROM"), fromEnv.stderr);
  assert(fromEnv.stderr.includes("primary, replica-preferred, replica"), fromEnv.stderr);
  assertNoStack(fromEnv.stderr);
  const fromFlag = await cli(["inspect", "nodes", "--read-max-lag-ms", "-1"]);
  assertEquals(fromFlag.code, 2);
  assert(fromFlag.stderr.includes("--read-max-lag-ms"), fromFlag.stderr);
  assertNoStack(fromFlag.stderr);
  const serve = await cli([
    "serve",
    "--self-host",
    "127.0.0.1",
    "--sentinels",
    "127.0.0.1:1",
    "--master-name",
    "m",
    "--read-from",
    "any",
  ]);
  assertEquals(serve.code, 2);
  assert(serve.stderr.includes("--read-from"), serve.stderr);
  assert(serve.stderr.includes("replica-preferred"), serve.stderr);
});
