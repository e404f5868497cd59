/**
 * The CLI's conventions (issue 10, point 7), in-process: version, help at
 * every level, one flag per concept, placeholders, stdout/stderr, JSON
 * failures and log lines, empty and long values, accurate hints.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { cli } from "../_harness/cli.ts";
import { colourWanted } from "../../lib/cli/command_spec.ts";
import { COMMANDS } from "../../lib/cli/command_table.ts";
import { VERSION } from "../../lib/common/version.ts";
import denoJson from "../../deno.json" with { type: "json" };

Deno.test("--version (and the version command) prints the version of deno.json, exit 0", async () => {
  assertEquals(VERSION, denoJson.version);
  for (const args of [["--version"], ["-V"], ["version"], ["status", "--version"]]) {
    const r = await cli(args);
    assertEquals([r.code, r.stdout, r.stderr], [0, `mn-redis-ha ${VERSION}`, ""], args.join(" "));
  }
});

Deno.test("--help at every level exits 0 on stdout: top, each group, each command", async () => {
  const groups = [
    ...new Set(COMMANDS.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0])),
  ];
  assertEquals(groups.sort(), ["inspect", "node", "service", "smoke"]);
  for (const group of groups) {
    const r = await cli([group!, "--help"]);
    assertEquals(r.code, 0, group);
    assertEquals(r.stderr, "", group);
    for (const c of COMMANDS.filter((c) => c.name.startsWith(`${group} `))) {
      assert(r.stdout.includes(c.name), `${group} --help lists ${c.name}`);
    }
  }
  for (const c of COMMANDS) {
    const r = await cli([...c.name.split(" "), "--help"]);
    assertEquals(r.code, 0, c.name);
    // Placeholders say what goes there: never a generic VALUE.
    assert(!r.stdout.includes(" VALUE"), `${c.name} --help shows a generic VALUE`);
    // One flag per concept: no flag listed twice.
    const flags = [...r.stdout.matchAll(/^\s+(--[\w-]+)/gm)].map((m) => m[1]);
    assertEquals(flags.length, new Set(flags).size, `${c.name} --help lists a flag twice`);
  }
  // A group without a subcommand is still a usage error.
  assertEquals((await cli(["inspect"])).code, 2);
});

Deno.test("an empty flag value is refused, not replaced by the default", async () => {
  const r = await cli(["status", "--url", ""]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes("--url is empty"), r.stderr);
});

Deno.test("a long value is shown cut, with its length", async () => {
  const long = "x".repeat(100_000);
  for (const args of [["status", "--url", long], ["status", "--ha-mode", long], [`--${long}`]]) {
    const r = await cli(args);
    assert(r.code === 2, args[0]);
    assert(r.stderr.length < 5_000, `${r.stderr.length} characters of error for ${args[0]}`);
  }
  const r = await cli([
    "status",
    "--ha-mode",
    "sentinel",
    "--sentinel-master",
    "m",
    "--sentinels",
    long + ":1",
  ]);
  assert(r.stderr.includes("(100002 characters)"), r.stderr.slice(0, 300));
});

Deno.test("--sentinels hints name the real mistake (separator, URL), not IPv6", async () => {
  const base = ["status", "--ha-mode", "sentinel", "--sentinel-master", "m", "--sentinels"];
  const semi = await cli([...base, "a:1;b:2"]);
  assert(semi.stderr.includes("separator other than a comma") && !semi.stderr.includes("IPv6"));
  const url = await cli([...base, "redis://10.0.0.1:26379"]);
  assert(url.stderr.includes("is a URL") && !url.stderr.includes("IPv6"), url.stderr);
});

Deno.test("--db accepts any index; the server decides (no cap at 15)", async () => {
  // Nothing listens on port 1: the run fails on the connection, not on --db 20.
  const r = await cli([
    "status",
    "--url",
    "redis://127.0.0.1:1",
    "--db",
    "20",
    "--reconnect-attempts",
    "1",
  ]);
  assert(!r.stderr.includes("MN_REDIS_DB"), r.stderr);
  assertEquals((await cli(["status", "--db", "-1"])).code, 2);
});

Deno.test("--json failures print a JSON error object on stdout; --log-format json makes the error a JSON line", async () => {
  const r = await cli(["status", "--json", "--ha-mode", "bogus"]);
  assertEquals(r.code, 2);
  const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  assertEquals(out.error.code, "CONFIG");
  assert(out.error.message.includes("--ha-mode"));
  const j = await cli(["status", "--log-format", "json", "--ha-mode", "bogus"]);
  assertEquals(j.code, 2);
  for (const line of j.stderr.split("\n").filter((l) => l !== "")) {
    const parsed = JSON.parse(line) as { level: string; code: string };
    assertEquals([parsed.level, parsed.code], ["error", "CONFIG"]);
  }
});

Deno.test("NO_COLOR turns colour off only when it is set to a non-empty value", () => {
  const io = (env: Record<string, string>, isTerminal: boolean) => ({
    stdout: () => {},
    stderr: () => {},
    getEnv: (name: string) => env[name],
    isTerminal,
  });
  assertEquals(colourWanted(io({}, true)), true);
  assertEquals(colourWanted(io({ NO_COLOR: "" }, true)), true);
  assertEquals(colourWanted(io({ NO_COLOR: "1" }, true)), false);
  assertEquals(colourWanted(io({}, false)), false);
});

Deno.test("a password in --url is refused (it would show in ps), pointing to MN_REDIS_PASSWORD; never echoed", async () => {
  for (const url of ["redis://:hunter2@127.0.0.1:6379/0", "rediss://app:hunter2@10.0.0.1:6380"]) {
    const r = await cli(["status", "--url", url, "--json"]);
    assertEquals(r.code, 2, r.stderr);
    assert(r.stderr.includes("MN_REDIS_PASSWORD"), r.stderr);
    assert(!r.stderr.includes("hunter2") && !r.stdout.includes("hunter2"), r.stderr);
    assertEquals(JSON.parse(r.stdout).error.code, "USAGE");
  }
  // A user name alone is no secret.
  const user = await cli(["status", "--url", "redis://app@127.0.0.1:1/0", "--json"]);
  assert(!user.stderr.includes("MN_REDIS_PASSWORD"), user.stderr);
});

/** README flags that are not mn-redis-ha's: Deno's, the scripts', and one the build refuses. */
const NOT_CLI_FLAGS: Record<string, string> = {
  "--allow-env": "deno install",
  "--allow-net": "deno install",
  "--allow-read": "deno install",
  "--allow-run": "deno install",
  "--allow-write": "deno install",
  "--allow-sys": "deno install",
  "--name": "deno install",
  "--check": "deno fmt --check",
  "--cycles": "scripts/bench_failover.ts",
  "--fault": "scripts/bench_failover.ts",
  "--nemesis": "scripts/chaos.ts",
  "--short": "scripts/chaos.ts",
  "--out": "scripts/chaos.ts and bench_failover.ts",
  "--rounds": "scripts/bench.ts",
  "--ms": "scripts/bench.ts",
  "--only": "scripts/bench.ts",
  "--verbose": "scripts/bench.ts",
  "--wait": "scripts/chaos.ts",
  "--clients": "scripts/bench_herd.ts, soak.ts and soak_memory.ts",
  "--processes": "scripts/bench_herd.ts",
  "--every": "scripts/soak.ts",
  "--failovers": "scripts/soak_memory.ts",
  "--duration": "scripts/soak.ts and chaos.ts",
  "--self-ip": "scripts/cluster_cli.sh",
  "--docker": "named as not supported by this build",
};

Deno.test("the README's operations match the commands exactly: every CLI flag documented, every documented flag real", async () => {
  const readme = await import("../../README.md", { with: { type: "text" } }).then((m) =>
    m.default as string
  );
  const documented = new Set(readme.match(/--[a-z][a-z0-9-]*/g));
  // --watch: `inspect --watch` is `inspect watch`.
  const real = new Set(["--help", "--version", "--json", "--log-format", "--watch"]);
  for (const c of COMMANDS) {
    for (const flag of Object.keys(c.flags)) {
      real.add(`--${flag}`);
      assert(documented.has(`--${flag}`), `${c.name} --${flag} is not in the README`);
    }
    // The MirrorNeuron documentation's spellings, accepted as aliases.
    for (const alias of Object.keys(c.aliases ?? {})) real.add(`--${alias}`);
  }
  const connection = await cli(["status", "--help"]);
  for (const flag of connection.stdout.match(/--[a-z][a-z0-9-]*/g) ?? []) real.add(flag);
  for (const flag of documented) {
    assert(
      real.has(flag) || flag in NOT_CLI_FLAGS,
      `the README mentions ${flag}, which no command takes`,
    );
  }
});
