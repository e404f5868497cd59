/**
 * The soak's short form, as CI runs it: three minutes on the fault suite's
 * three boxes, a fault every 20 s, 20 node clients. It asserts the checker's
 * zeros and that descriptors and connections come back after every fault;
 * the memory slopes need a long run (`deno task soak`), and a short one
 * reports them without judging.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { runProcess, spawnCollecting } from "../_harness/process.ts";
import { waitFor } from "../_harness/mod.ts";

/** Fault-suite dirs under .tmp (a run removes its own). */
function chaosDirs(): string[] {
  return [...Deno.readDirSync(".tmp")].map((e) => e.name).filter((n) => n.startsWith("chaos-"));
}

/** `deno run` of the soak as `deno task soak` runs it, with `flags`. */
function soakArgv(flags: string[]): string[] {
  return [
    "run",
    "-P=chaos",
    "--quiet",
    "--no-prompt",
    "--v8-flags=--expose-gc",
    "scripts/soak.ts",
    ...flags,
  ];
}

Deno.test("deno task soak (3 min, a fault every 20 s): nothing lost or duplicated, fencing kept, descriptors and connections back at their baseline before every fault", async () => {
  await Deno.mkdir(".tmp", { recursive: true });
  const out = await Deno.makeTempDir({ dir: ".tmp", prefix: "soak-ci-" });
  const before = chaosDirs();
  try {
    const r = await runProcess(
      "deno",
      soakArgv(["--duration", "3m", "--every", "20s", "--clients", "20", "--out", out]),
      { timeoutMs: 600_000 },
    );
    const report = JSON.parse(await Deno.readTextFile(`${out}/report.json`));
    // deno-lint-ignore no-console -- the soak's figures, quoted in the README
    console.log(await Deno.readTextFile(`${out}/report.md`));
    assertEquals(r.code, 0, r.stderr.slice(-3000));
    assert(report.faults >= 6, `${report.faults} faults`);
    assert(report.failovers >= 2, `${report.failovers} failovers`);
    const c = report.checker;
    assertEquals(
      [c.lost, c.duplicated, c.failedButPresent, c.fencingViolations, c.holderOverlapMs],
      [0, 0, 0, 0, 0],
    );
    assertEquals(report.leaks, []);
    // Every process was sampled all along: the workload's and the node clients'.
    const names = new Set(
      report.samples.flatMap((s: { processes: { name: string }[] }) =>
        s.processes.map((p) => p.name)
      ),
    );
    assertEquals([...names].sort(), ["clients-1", "workload"]);
    assert(report.samples.length >= 30, `${report.samples.length} samples`);
    assert((await Deno.readTextFile(`${out}/soak.svg`)).startsWith("<svg"));
    assertEquals(chaosDirs().filter((d) => !before.includes(d)), []);
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});

Deno.test("deno task soak on Ctrl-C: exits 130 and leaves no box behind", async () => {
  await Deno.mkdir(".tmp", { recursive: true });
  const out = await Deno.makeTempDir({ dir: ".tmp", prefix: "soak-int-" });
  const before = chaosDirs();
  const soak = spawnCollecting(
    "deno",
    soakArgv(["--duration", "5m", "--clients", "5", "--out", out]),
  );
  try {
    await waitFor(
      () =>
        soak.stderr().includes("node clients in")
          ? { done: true, value: undefined }
          : { done: false, observed: soak.stderr().slice(-300) },
      { what: "the soak to start", timeoutMs: 120_000 },
    );
    const interrupted = performance.now();
    soak.kill("SIGINT");
    const status = await soak.done;
    assertEquals(status.code, 130, soak.stderr().slice(-2000));
    assert(performance.now() - interrupted < 60_000, "the soak took over 60 s to stop");
    assertEquals(chaosDirs().filter((d) => !before.includes(d)), []);
  } finally {
    soak.kill("SIGKILL");
    await soak.done;
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});
