import { assert, assertEquals } from "../_harness/assert.ts";
import { startCluster } from "../_harness/mod.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
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
  assertEquals(JSON.parse(r.stdout).primary.address, formatEndpoint(cluster.nodes[0]!.endpoint));
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

Deno.test("test:ha takes the user doc's --redis-ha flags and checks them before any suite runs", async () => {
  const started = performance.now();
  const partial = await bash([
    "scripts/test_all_ha.sh",
    "--redis-ha",
    "--redis-ha-remote-host",
    "10.0.0.9",
  ]);
  assertEquals(partial.code, 2);
  assert(
    partial.stderr.includes("needs --remote-host, --local-ip and --remote-ip"),
    partial.stderr,
  );
  assert(performance.now() - started < 10_000, "refused before running the local smoke");
  const unknown = await bash(["scripts/test_all_ha.sh", "--redis-ha", "--bogus"]);
  assertEquals(unknown.code, 2);
  assert(unknown.stderr.includes("unknown flag --bogus"), unknown.stderr);
});

Deno.test("test:ha --redis-ha runs the local suite and prints no Deno warning", async () => {
  const r = await bash(["scripts/test_all_ha.sh", "--redis-ha"]);
  assertEquals(r.code, 0, r.stderr.slice(-2000));
  assert(r.stdout.includes("All selected test suites passed."), r.stdout);
  for (const text of [r.stdout, r.stderr]) {
    assert(!/experimental|^Warning/m.test(text), "a Deno warning in the output");
  }
});

Deno.test("deno task compile with a runtime that is not denort fails and leaves no binary behind", async () => {
  await Deno.mkdir(".tmp", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: ".tmp", prefix: "compile-" });
  try {
    // Any ELF that is not denort: a copy of /bin/true, as the offline graph check uses.
    assertEquals((await bash(["-c", 'cp /bin/true "$0"', `${dir}/standin`])).code, 0);
    const r = await runProcess("bash", ["scripts/compile.sh", `${dir}/out/mn-redis-ha`], {
      env: { DENORT_BIN: await Deno.realPath(`${dir}/standin`) },
    });
    assertEquals(r.code, 1, r.stderr);
    assert(r.stderr.includes("does not run as mn-redis-ha"), r.stderr);
    assert(r.stderr.includes("is not a denort runtime"), r.stderr);
    // Nothing left: not the binary, not the out/ directory the run made.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["standin"]);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("deno task compile offline, or with DENORT_BIN pointing at nothing, says what failed and the offline route, and leaves nothing behind", async () => {
  await Deno.mkdir(".tmp", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: ".tmp", prefix: "compile-" });
  try {
    // No route to dl.deno.land: every download goes to a closed local port.
    const offline = await runProcess("bash", ["scripts/compile.sh", `${dir}/dist/mn-redis-ha`], {
      env: { HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", NO_PROXY: "" },
    });
    const missing = await runProcess("bash", ["scripts/compile.sh", `${dir}/dist2/mn-redis-ha`], {
      env: { DENORT_BIN: `${dir}/no-such-denort` },
    });
    for (
      const [r, what] of [[offline, "could not download the denort runtime"], [
        missing,
        "is not a file",
      ]] as const
    ) {
      assertEquals(r.code, 1, r.stderr);
      assert(r.stderr.includes(what), r.stderr);
      assert(r.stderr.includes("DENORT_BIN=/path/to/denort deno task compile"), r.stderr);
      assert(!r.stderr.includes("Stack backtrace"), r.stderr);
    }
    // Not even the output directory this run would have made.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), []);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
