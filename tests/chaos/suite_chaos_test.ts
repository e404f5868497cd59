/**
 * The fault suite's short form, as CI runs it: one cycle of every nemesis on
 * three network-namespace boxes with WAIT 1, each checked by the history
 * checker. Runs after the integration tests (`deno task test:chaos`), alone,
 * so its load does not disturb their timings.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { runProcess } from "../_harness/process.ts";
import { NEMESES } from "../../scripts/chaos/nemesis.ts";
import type { RunReport } from "../../scripts/chaos/report.ts";

Deno.test("deno task chaos --short: every nemesis with WAIT 1 loses nothing acknowledged, duplicates nothing, keeps fencing, never overlaps holders (but where its fault is expected to) and no replica read is stale or misses its own write", async () => {
  await Deno.mkdir(".tmp", { recursive: true });
  const out = await Deno.makeTempDir({ dir: ".tmp", prefix: "chaos-ci-" });
  try {
    const r = await runProcess("deno", [
      "run",
      "-P=chaos",
      "--quiet",
      "--no-prompt",
      "scripts/chaos.ts",
      "--nemesis",
      "all",
      "--short",
      "--out",
      out,
    ], { timeoutMs: 900_000 });
    const reports: RunReport[] = [];
    for (const nemesis of NEMESES) {
      const text = await Deno.readTextFile(`${out}/${nemesis.name}-wait1/report.json`);
      reports.push(JSON.parse(text));
    }
    // deno-lint-ignore no-console -- the figures of every nemesis, quoted in the README
    console.log(await Deno.readTextFile(`${out}/summary.md`));
    for (const report of reports) {
      const at = `${report.nemesis}: ${JSON.stringify(report.findings.slice(0, 5))}`;
      assertEquals(report.error, undefined, at);
      assertEquals(
        [report.duplicated, report.failedButPresent, report.fencingViolations],
        [0, 0, 0],
        at,
      );
      // A kill of every process may lose what no disk had yet (reported, not failed on); no
      // other fault may lose an acknowledged write.
      if (!report.expected.lostAcknowledged) assertEquals(report.lost, 0, at);
      if (!report.expected.holderOverlap) assertEquals(report.holderOverlapMs, 0, at);
      assert(report.acked > 1000, `${report.nemesis}: only ${report.acked} writes acknowledged`);
      // Replica readers (replica-preferred, 100 ms bound): never older than the bound or their
      // own acknowledged write, and replicas served them.
      const reads = report.replicaReads!;
      if (!report.expected.lostAcknowledged) {
        assertEquals(
          [reads.stale, reads.readYourWrites],
          [0, 0],
          `${report.nemesis}: ${report.notes}`,
        );
      }
      assert(reads.byReplica > 100, `${report.nemesis}: replica reads ${JSON.stringify(reads)}`);
    }
    // The slow clock shows the overlap fencing is for, and fencing rejects the stale writes.
    const clock = reports.find((r) => r.nemesis === "clock")!;
    assert(clock.holderOverlapMs > 0, `clock: ${clock.notes.join("; ")}`);
    assert(/x0\.95: holder overlap 0 ms/.test(clock.notes.join("\n")), clock.notes.join("; "));
    assert(
      /x0\.5: .* [1-9]\d* of its writes rejected by fencing/.test(clock.notes.join("\n")),
      clock.notes.join("; "),
    );
    // A forward step of the servers' wall clock expires every lease key at once (Redis expiry
    // follows the wall clock; the sentinels enter TILT and do not fail over), and the run saw it.
    assert(
      /clock-step: \+5 s: ([2-9]|\d{2,}) keys expired on the primary at once \(expired_keys\), 3 of 3 sentinels in TILT/
        .test(clock.notes.join("\n")),
      clock.notes.join("; "),
    );
    assert(
      /wall clock stepped \+(49|50)\d\d ms/.test(clock.notes.join("\n")),
      clock.notes.join("; "),
    );
    assertEquals(clock.switches, 0, clock.notes.join("; "));
    // Writes a full disk or memory refused are typed, and nothing of them was written.
    for (const name of ["disk-full", "oom"]) {
      const run = reports.find((r) => r.nemesis === name)!;
      assert(
        /[1-9]\d* writes refused/.test(run.notes.join("\n")),
        `${name}: ${run.notes.join("; ")}`,
      );
    }
    assertEquals(r.code, 0, r.stderr.slice(-2000));
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});
