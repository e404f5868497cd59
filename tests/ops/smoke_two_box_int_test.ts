import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { assert, assertEquals } from "../_harness/assert.ts";
import { TwoBoxNet } from "../_harness/netns.ts";
import { MN_CLI, type ProcessRun, runProcess } from "../_harness/process.ts";
import { parseRemoteShell } from "../../lib/ops/smoke_two_box.ts";

const available = await TwoBoxNet.available();

function smoke(net: TwoBoxNet, extra: string[] = []): Promise<ProcessRun> {
  return net.exec(net.local.ns, [
    ...MN_CLI,
    "smoke",
    "two-box",
    "--remote-host",
    net.remote.ns,
    "--local-ip",
    net.local.ip,
    "--remote-ip",
    net.remote.ip,
    "--remote-shell",
    `ip netns exec ${net.remote.ns}`,
    "--dir",
    ".tmp",
    ...extra,
  ]);
}

Deno.test({
  name: "mn-redis-ha smoke two-box passes between two network namespaces, local as initial primary",
  ignore: !available,
  fn: async () => {
    await using net = await TwoBoxNet.create();
    const before = await sentinelConfigs();
    const r = await smoke(net);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await sentinelConfigs(), before, "the remote sentinel's config file is removed");
    assert(r.stdout.includes(`two_box_initial_write_ok=${net.local.ip}:6390`), r.stdout);
    assert(r.stdout.includes("two_box_post_failover_write_read_ok"), r.stdout);
    assert(!r.stdout.includes("Remote cannot reach"), r.stdout);
    // The other documented choices: the remote side as initial primary, bridge-style binding.
    const remote = await smoke(net, ["--initial-primary", "remote", "--remote-network", "bridge"]);
    assertEquals(remote.code, 0, remote.stderr);
    assert(remote.stdout.includes(`two_box_initial_write_ok=${net.remote.ip}:6390`), remote.stdout);
    assert(remote.stdout.includes("two_box_post_failover_write_read_ok"), remote.stdout);
  },
});

Deno.test({
  name:
    "mn-redis-ha smoke two-box falls back to a remote primary when the remote cannot reach local Redis",
  ignore: !available,
  fn: async () => {
    await using net = await TwoBoxNet.create();
    await net.blockRemoteToLocal();
    const r = await smoke(net);
    assertEquals(r.code, 0, r.stderr);
    assert(
      r.stdout.includes(
        `Remote cannot reach local Redis at ${net.local.ip}:6390; using remote as initial primary.`,
      ),
      r.stdout,
    );
    assert(r.stdout.includes("not a production Sentinel topology"), r.stdout);
    assert(r.stdout.includes(`two_box_initial_write_ok=${net.remote.ip}:6390`), r.stdout);
    assert(r.stdout.includes("two_box_post_failover_write_read_ok"), r.stdout);
    // Forcing the unreachable side as primary fails clearly instead.
    const forced = await smoke(net, ["--initial-primary", "local"]);
    assertEquals(forced.code, 1);
    assert(forced.stderr.includes("cannot reach"), forced.stderr);
  },
});

Deno.test({
  name:
    "mn-redis-ha smoke two-box passes between two IPv6 network namespaces ([addr]:port everywhere)",
  ignore: !available,
  fn: async () => {
    await using net = await TwoBoxNet.create({ ipv6: true });
    const r = await smoke(net);
    assertEquals(r.code, 0, r.stderr + r.stdout);
    // Printed in the canonical form (the namespaces' addresses are spelled with a leading zero).
    const local = formatEndpoint({ host: net.local.ip, port: 6390 });
    assert(local !== `[${net.local.ip}]:6390`, "the address is spelled non-canonically");
    assert(r.stdout.includes(`two_box_initial_write_ok=${local}`), r.stdout);
    assert(r.stdout.includes("two_box_post_failover_write_read_ok"), r.stdout);
  },
});

/** The remote sentinels' config files in /tmp (the netns boxes share this filesystem). */
async function sentinelConfigs(): Promise<string> {
  const r = await runProcess("bash", ["-c", "ls /tmp/mn-sentinel-*.conf 2>/dev/null || true"]);
  return r.stdout.trim();
}

/** `smoke two-box` on loopback through `shell`, for the tests of a remote shell that fails. */
function loopbackSmoke(shell: string): string[] {
  return [
    "smoke",
    "two-box",
    "--remote-host",
    "127.0.0.1",
    "--local-ip",
    "127.0.0.1",
    "--remote-ip",
    "127.0.0.2",
    "--remote-shell",
    shell,
  ];
}

Deno.test("mn-redis-ha smoke two-box reports a failing remote shell as such, with what it said", async () => {
  const started = performance.now();
  const r = await runProcess(MN_CLI[0]!, [
    ...MN_CLI.slice(1),
    ...loopbackSmoke("ssh -o BatchMode=yes -p 1 127.0.0.1"),
    "--dir",
    ".tmp",
  ]);
  assertEquals(r.code, 1, r.stderr);
  assert(r.stderr.includes('step "0. check the remote shell"'), r.stderr);
  assert(
    r.stderr.includes("failed (exit 255)") && r.stderr.includes("Connection refused"),
    r.stderr,
  );
  assert(!r.stdout.includes("Remote cannot reach"), "not mistaken for one-way reachability");
  assert(performance.now() - started < 15_000, "reported at once, not after a timeout");
});

Deno.test("mn-redis-ha smoke two-box refuses up front a --remote-shell its permissions cannot run, saying how to allow it", async () => {
  const r = await runProcess(MN_CLI[0]!, [...MN_CLI.slice(1), ...loopbackSmoke("false")]);
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes('--remote-shell runs "false"'), r.stderr);
  assert(r.stderr.includes("--allow-run=false,ssh"), r.stderr);
  assert(!r.stderr.includes("NotCapable") && !r.stderr.includes("Requires run"), r.stderr);
  // Allowed the program, the same prefix is taken: the remote shell runs (and fails, as it should).
  const [deno, run, ...rest] = MN_CLI;
  const allowed = await runProcess(deno!, [
    run!,
    "--allow-run=false,ssh,ip,redis-server,redis-sentinel,systemctl",
    ...rest,
    ...loopbackSmoke("false"),
  ]);
  assertEquals(allowed.code, 1, allowed.stderr);
  assert(allowed.stderr.includes('step "0. check the remote shell"'), allowed.stderr);
});

Deno.test("parseRemoteShell() defaults to ssh <remote-host> and rejects an empty value", () => {
  assertEquals(parseRemoteShell(undefined, "192.168.4.173"), ["ssh", "192.168.4.173"]);
  assertEquals(parseRemoteShell("ip netns exec b", "x"), ["ip", "netns", "exec", "b"]);
  let threw = false;
  try {
    parseRemoteShell("  ", "x");
  } catch {
    threw = true;
  }
  assert(threw);
});
