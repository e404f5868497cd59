import { assertEquals } from "../_harness/assert.ts";
import { formatFigure, judge, median } from "../../scripts/bench/targets.ts";

Deno.test("bench targets are judged on the median of the per-round figures", () => {
  const min = { name: "a / b", kind: "min" as const, bound: 2, unit: "×" };
  assertEquals(judge(min, [1.9, 2.1, 2.5]).verdict, "PASS");
  assertEquals(judge(min, [1.9, 1.95, 2.5]).verdict, "FAIL");
  const max = { name: "p50 delta", kind: "max" as const, bound: 60, unit: "µs" };
  const r = judge(max, [70, 40, NaN, 55]);
  assertEquals([r.median, r.min, r.max, r.verdict], [55, 40, 70, "PASS"]);
  assertEquals(judge(max, [NaN]).verdict, "SKIP");
  assertEquals(median([3, 1, 2, 4]), 2.5);
  assertEquals(formatFigure(0.8049, "×"), "0.80×");
  assertEquals(formatFigure(1234.4, "µs"), "1,234 µs");
});
