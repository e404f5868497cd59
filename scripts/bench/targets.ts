/**
 * The performance targets of `deno task bench` (issue 9), judged on figures
 * measured in the same run: per-round ratios (each round's contenders run
 * back to back, so a ratio within a round is the stable signal), reported as
 * median and min–max with PASS/FAIL on the median.
 *
 * @module
 */

/** One target: how its figure is read and the bound it must meet. */
export interface Target {
  /** What is compared, e.g. `command SET / ioredis auto-pipelining`. */
  readonly name: string;
  /** `min`: the figure must be at least `bound`; `max`: at most. */
  readonly kind: "min" | "max";
  /** The bound. */
  readonly bound: number;
  /** Unit shown after the figure: `×`, `µs`, `ms`, `MB`. */
  readonly unit: string;
}

/** A target with its per-round figures. */
export interface TargetResult extends Target {
  /** The figure per round (NaN where it could not be measured). */
  readonly perRound: readonly number[];
  /** Median over the rounds. */
  readonly median: number;
  /** Smallest and largest round. */
  readonly min: number;
  /** Largest round. */
  readonly max: number;
  /** PASS when the median meets the bound; FAIL otherwise; SKIP when not measured. */
  readonly verdict: "PASS" | "FAIL" | "SKIP";
}

/** The median of finite values (NaN when there are none). */
export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Judges a target on its per-round figures. */
export function judge(target: Target, perRound: readonly number[]): TargetResult {
  const finite = perRound.filter(Number.isFinite);
  const m = median(finite);
  const verdict = finite.length === 0
    ? "SKIP"
    : (target.kind === "min" ? m >= target.bound : m <= target.bound)
    ? "PASS"
    : "FAIL";
  return {
    ...target,
    perRound,
    median: m,
    min: finite.length === 0 ? NaN : Math.min(...finite),
    max: finite.length === 0 ? NaN : Math.max(...finite),
    verdict,
  };
}

/** A figure with its unit, rounded for reading. */
export function formatFigure(value: number, unit: string): string {
  if (!Number.isFinite(value)) return "–";
  if (unit === "×") return `${value.toFixed(2)}×`;
  return `${Math.round(value).toLocaleString("en-US")} ${unit}`;
}

/** The markdown table of targets. */
export function targetsTable(results: readonly TargetResult[]): string {
  return [
    "| target | bound | median | min–max | verdict |",
    "| --- | --- | --- | --- | --- |",
    ...results.map((t) =>
      `| ${t.name} | ${t.kind === "min" ? "≥" : "≤"} ${formatFigure(t.bound, t.unit)} | ${
        formatFigure(t.median, t.unit)
      } | ${formatFigure(t.min, t.unit)} – ${formatFigure(t.max, t.unit)} | ${t.verdict} |`
    ),
  ].join("\n");
}
