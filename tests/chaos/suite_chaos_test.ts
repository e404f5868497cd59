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

Deno.test("deno task chaos --short: every nemesis with WAIT 1 loses nothing acknowledged, duplicates nothing, keeps fencing and never overlaps holders", async () => {
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
        [report.lost, report.duplicated, report.failedButPresent, report.fencingViolations],
        [0, 0, 0, 0],
        at,
      );
      assertEquals(report.holderOverlapMs, 0, at);
      assert(report.acked > 1000, `${report.nemesis}: only ${report.acked} writes acknowledged`);
    }
    assertEquals(r.code, 0, r.stderr.slice(-2000));
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});
