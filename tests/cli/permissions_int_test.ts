import { assert, assertEquals } from "../_harness/assert.ts";
import { type ProcessRun, runProcess } from "../_harness/process.ts";

/** Runs main.ts under a named permission set, never interactively, with a hard deadline. */
async function runUnder(set: string, args: string[]): Promise<ProcessRun & { ms: number }> {
  const started = performance.now();
  // A prompt would hang: the deadline turns that into a failure.
  const run = await runProcess("deno", [
    "run",
    `-P=${set}`,
    "--no-prompt",
    "--quiet",
    "main.ts",
    ...args,
  ], {
    timeoutMs: 30_000,
  });
  return { ...run, ms: performance.now() - started };
}

Deno.test("the smoke permission set refuses writes outside ./.tmp cleanly, without a prompt", async () => {
  const r = await runUnder("smoke", [
    "smoke",
    "local",
    "--dir",
    `/var/tmp/mn-outside-${crypto.randomUUID()}`,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assert(r.stderr.includes("not permitted") || r.stderr.includes("NotCapable"), r.stderr);
  assert(r.stderr.includes("write access"), r.stderr);
  assert(!/^\s+at /m.test(r.stderr), r.stderr);
});

Deno.test("the smoke permission set refuses network access beyond loopback cleanly", async () => {
  const r = await runUnder("smoke", [
    "probe",
    "--url",
    "redis://10.255.255.1:6379",
    "--reconnect-attempts",
    "5",
  ]);
  assertEquals(r.code, 1, r.stderr);
  assert(r.stderr.includes("Not permitted to connect to 10.255.255.1:6379"), r.stderr);
  assert(r.stderr.includes("--allow-net=10.255.255.1:6379"), r.stderr);
  assertEquals(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  assert(r.ms < 15_000, `took ${r.ms}ms: a permission refusal must not be retried`);
});

Deno.test("the smoke permission set cannot run anything but the redis binaries", async () => {
  const r = await runUnder("smoke", [
    "smoke",
    "two-box",
    "--remote-host",
    "h",
    "--local-ip",
    "127.0.0.1",
    "--remote-ip",
    "127.0.0.2",
    "--dir",
    ".tmp",
  ]);
  // Refused up front: the remote shell's program (ssh) is not in the smoke set.
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes('--remote-shell runs "ssh"'), r.stderr);
  assert(!r.stderr.includes("NotCapable"), r.stderr);
});
