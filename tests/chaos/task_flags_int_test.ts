/**
 * The task programs refuse bad flags and an `--out` outside their write
 * permission up front: one line naming the flag, exit 2, no stack trace, and
 * nothing started.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { type ProcessRun, runProcess } from "../_harness/process.ts";

const TASKS = {
  chaos: ["-P=chaos", "scripts/chaos.ts"],
  bench: ["-P=bench-clients", "scripts/bench.ts"],
  "bench:failover": ["-P=bench-clients", "scripts/bench_failover.ts"],
  "bench:herd": ["-P=bench-clients", "scripts/bench_herd.ts"],
  soak: ["-P=chaos", "scripts/soak.ts"],
  "soak:memory": ["-P=bench", "scripts/soak_memory.ts"],
} as const;

function task(name: keyof typeof TASKS, args: string[]): Promise<ProcessRun> {
  const [set, script] = TASKS[name];
  return runProcess("deno", ["run", set, "--quiet", "--no-prompt", script, ...args], {
    timeoutMs: 30_000,
  });
}

Deno.test("chaos, bench, bench:failover, bench:herd, soak and soak:memory refuse bad flags and an --out they may not write, exit 2, no stack trace", async () => {
  const cases: [keyof typeof TASKS, string[], string][] = [
    [
      "chaos",
      ["--out", "/some/dir", "--nemesis", "kill", "--short"],
      '--out "/some/dir" is outside',
    ],
    ["chaos", ["--nemesis", "nope"], 'unknown nemesis "nope"'],
    ["chaos", ["--duration", "abc"], '--duration is "abc"'],
    ["chaos", ["--bogus"], "--bogus"],
    ["bench", ["--out", "/some/dir"], '--out "/some/dir" is outside'],
    ["bench", ["--rounds", "0"], '--rounds is "0"'],
    ["bench", ["--only", "("], "--only is not a regular expression"],
    ["bench:failover", ["--out", "/some/dir"], '--out "/some/dir" is outside'],
    ["bench:failover", ["--cycles", "x"], '--cycles is "x"'],
    ["bench:herd", ["--clients", "0"], '--clients is "0"'],
    ["bench:herd", ["--clients", "10,abc"], '--clients is "abc"'],
    ["bench:herd", ["--processes", "0"], '--processes is "0"'],
    ["bench:herd", ["--out", "/some/dir"], '--out "/some/dir" is outside'],
    ["soak", ["--clients", "0"], '--clients is "0"'],
    ["soak", ["--duration", "abc"], '--duration is "abc"'],
    ["soak", ["--every", "1s"], '--every is "1s"'],
    ["soak", ["--out", "/some/dir"], '--out "/some/dir" is outside'],
    ["soak:memory", ["--failovers", "1"], '--failovers is "1"'],
    ["soak:memory", ["--clients", "abc"], '--clients is "abc"'],
    ["soak:memory", ["--out", "/some/dir"], '--out "/some/dir" is outside'],
  ];
  for (const [name, args, expected] of cases) {
    const started = performance.now();
    const r = await task(name, args);
    const what = `${name} ${args.join(" ")}`;
    assertEquals(r.code, 2, `${what}: ${r.stderr}`);
    assert(r.stderr.includes(`${name}: `) && r.stderr.includes(expected), `${what}: ${r.stderr}`);
    assert(!/NotCapable|Stack backtrace| {4}at /.test(r.stderr), `${what}: ${r.stderr}`);
    // Refused before any cluster or namespace is built.
    assert(performance.now() - started < 10_000, `${what} took ${performance.now() - started}ms`);
  }
  // The refusal says where the task may write, and how to allow another place.
  const refused = await task("chaos", ["--out", "/some/dir"]);
  assert(refused.stderr.includes("./.tmp, ./bench"), refused.stderr);
  assert(refused.stderr.includes("deno run -P=chaos --allow-write=/some/dir"), refused.stderr);
});
