/**
 * A fault run's outputs: `report.json`, `report.md` and `timeline.svg`
 * (acknowledged writes per 100 ms, failed and unknown outcomes marked, fault
 * windows shaded, every `+switch-master` drawn), and the combined
 * `summary.md` of several runs.
 */

import type { Verdict } from "./checker.ts";
import type { Entry, Mark, Op } from "./history.ts";

/** Everything about one run. */
export interface RunReport extends Verdict {
  readonly nemesis: string;
  readonly wait: number;
  readonly durationMs: number;
  readonly switches: number;
  /** What the nemeses showed, in their own words (figures of the fault windows). */
  readonly notes: readonly string[];
  /** What the run's faults are expected to break (reported, not failed on). */
  readonly expected: { readonly lostAcknowledged: boolean; readonly holderOverlap: boolean };
  readonly error?: string | undefined;
  /**
   * The replica readers' check (see `read_checker.ts`): reads, how many a
   * replica served, and reads older than the bound or than the reader's own
   * acknowledged write.
   */
  readonly replicaReads?: {
    readonly reads: number;
    readonly byReplica: number;
    readonly stale: number;
    readonly readYourWrites: number;
  } | undefined;
}

/** Whether a run broke a promise its faults do not excuse. */
export function runFailed(r: RunReport): boolean {
  return r.error !== undefined || r.duplicated > 0 || r.failedButPresent > 0 ||
    r.fencingViolations > 0 ||
    (r.wait > 0 && r.lost > 0 && !r.expected.lostAcknowledged) ||
    (r.holderOverlapMs > 0 && !r.expected.holderOverlap) ||
    // A lost acknowledged write makes its counter go back: reads are judged only where none may be.
    (r.wait > 0 && !r.expected.lostAcknowledged &&
      ((r.replicaReads?.stale ?? 0) > 0 || (r.replicaReads?.readYourWrites ?? 0) > 0));
}

/** The markdown report of one run. */
export function reportMarkdown(r: RunReport): string {
  const lines = [
    `# Fault run: ${r.nemesis} (WAIT ${r.wait})`,
    "",
    "| figure | value |",
    "| --- | --- |",
    ...([
      ["operations invoked", r.invoked],
      ["acknowledged", r.acked],
      ["failed (not applied)", r.failed],
      ["unknown outcome", r.unknown],
      ["acknowledged but lost", r.lost],
      ["duplicated", r.duplicated],
      ["reported failed but present", r.failedButPresent],
      ["fencing violations", r.fencingViolations],
      ["lease grants", r.grants],
      ["holder overlap (total / longest)", `${r.holderOverlapMs} ms / ${r.maxHolderOverlapMs} ms`],
      ["longest window without an acknowledged write", `${r.longestUnavailableMs} ms`],
      ["Sentinel switches seen", r.switches],
      [
        "replica reads (by a replica / stale / own write missed)",
        r.replicaReads === undefined
          ? "not run"
          : `${r.replicaReads.reads} (${r.replicaReads.byReplica} / ${r.replicaReads.stale} / ${r.replicaReads.readYourWrites})`,
      ],
      ["run length", `${Math.round(r.durationMs / 1000)} s`],
    ] as const).map(([k, v]) => `| ${k} | ${v} |`),
    "",
  ];
  if (r.error !== undefined) lines.push(`**The run failed:** ${r.error}`, "");
  if (r.notes.length > 0) {
    lines.push("## What the faults showed", "", ...r.notes.map((n) => `- ${n}`), "");
  }
  if (r.findings.length > 0) {
    lines.push("## Findings", "");
    for (const f of r.findings.slice(0, 50)) lines.push(`- ${f.kind}: ${f.id} — ${f.detail}`);
    if (r.findings.length > 50) lines.push(`- … and ${r.findings.length - 50} more (report.json)`);
    lines.push("");
    if (r.lost > 0) {
      lines.push(
        r.wait === 0
          ? "Writes acknowledged by a primary before any replica had them are lost when that primary dies or is cut off and a replica is promoted: with `--wait 0` nothing waits for a replica."
          : r.expected.lostAcknowledged
          ? "Expected of a power loss: WAIT confirms that a replica holds a write in memory, not that any disk does. With `appendfsync everysec` every node may lose up to a second of writes at once; see the README for what to configure for more."
          : "Acknowledged writes were lost although WAIT confirmed a replica: see the findings for which, and when.",
        "",
      );
    }
  }
  lines.push("![timeline](timeline.svg)", "");
  return lines.join("\n");
}

/** The timeline picture of one run. */
export function timelineSvg(
  entries: readonly Entry[],
  title: string,
  endMs: number,
  lost: ReadonlySet<string> = new Set(),
): string {
  const width = 900;
  const height = 240;
  const left = 40;
  const plot = { top: 30, bottom: 190 };
  const bucketMs = 100;
  const buckets = Math.max(1, Math.ceil(endMs / bucketMs));
  const acked = new Array<number>(buckets).fill(0);
  const lostAt = new Array<number>(buckets).fill(0);
  const bad: { at: number; outcome: string }[] = [];
  for (const e of entries) {
    if (e.type !== "op" || e.kind === "read") continue;
    const op = e as Op;
    const at = op.completedAt ?? op.invokedAt;
    const bucket = Math.min(buckets - 1, Math.floor(at / bucketMs));
    if (op.outcome === "ok") {
      acked[bucket]!++;
      if (lost.has(`${op.kind} ${op.id}`)) lostAt[bucket]!++;
    } else if (op.outcome !== undefined) {
      bad.push({ at, outcome: op.outcome });
    }
  }
  const peak = Math.max(1, ...acked);
  const x = (ms: number): number => left + (ms / Math.max(1, endMs)) * (width - left - 10);
  const y = (n: number): number => plot.bottom - (n / peak) * (plot.bottom - plot.top);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="16" font-size="13">${escape(title)}</text>`,
  ];
  for (const m of entries.filter((e): e is Mark => e.type === "mark" && e.what === "fault")) {
    const to = m.to ?? endMs;
    parts.push(
      `<rect x="${x(m.from).toFixed(1)}" y="${plot.top}" width="${
        Math.max(1, x(to) - x(m.from)).toFixed(1)
      }" height="${plot.bottom - plot.top}" fill="#f4c7c3" opacity="0.6"><title>${
        escape(m.label)
      }</title></rect>`,
      `<text x="${x(m.from).toFixed(1)}" y="${plot.top - 4}" fill="#a52714">${
        escape(m.label)
      }</text>`,
    );
  }
  const barWidth = Math.max(1, (width - left - 10) / buckets - 0.5);
  acked.forEach((n, i) => {
    if (n === 0) return;
    parts.push(
      `<rect x="${x(i * bucketMs).toFixed(1)}" y="${y(n).toFixed(1)}" width="${
        barWidth.toFixed(1)
      }" height="${(plot.bottom - y(n)).toFixed(1)}" fill="#34a853"/>`,
    );
  });
  lostAt.forEach((n, i) => {
    if (n === 0) return;
    parts.push(
      `<rect x="${x(i * bucketMs).toFixed(1)}" y="${y(n).toFixed(1)}" width="${
        barWidth.toFixed(1)
      }" height="${
        (plot.bottom - y(n)).toFixed(1)
      }" fill="#202124"><title>${n} acknowledged, then lost</title></rect>`,
    );
  });
  for (const b of bad) {
    parts.push(
      `<circle cx="${x(b.at).toFixed(1)}" cy="${b.outcome === "failed" ? 205 : 215}" r="2" fill="${
        b.outcome === "failed" ? "#d93025" : "#f9ab00"
      }"/>`,
    );
  }
  for (const m of entries.filter((e): e is Mark => e.type === "mark" && e.what === "switch")) {
    parts.push(
      `<line x1="${x(m.from).toFixed(1)}" x2="${
        x(m.from).toFixed(1)
      }" y1="${plot.top}" y2="${plot.bottom}" stroke="#1a73e8" stroke-dasharray="4 3"><title>${
        escape(m.label)
      }</title></line>`,
    );
  }
  parts.push(
    `<line x1="${left}" x2="${width - 10}" y1="${plot.bottom}" y2="${plot.bottom}" stroke="#555"/>`,
    `<text x="${left - 4}" y="${plot.top + 4}" text-anchor="end">${peak}</text>`,
    `<text x="${left - 4}" y="${plot.bottom}" text-anchor="end">0</text>`,
    `<text x="${width - 10}" y="${plot.bottom + 12}" text-anchor="end">${
      (endMs / 1000).toFixed(1)
    } s</text>`,
    `<text x="${left}" y="232">green: acknowledged writes per 100 ms · black: acknowledged, then lost · red: failed · amber: unknown · shaded: fault · blue: +switch-master</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

/** The combined table of several runs. */
export function summaryMarkdown(reports: readonly RunReport[]): string {
  return [
    "# Fault suite summary",
    "",
    "| nemesis | WAIT | invoked | acked | lost | duplicated | unknown | failed but present | fencing violations | holder overlap ms | longest unavailable ms | replica reads (stale / own write missed) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...reports.map((r) =>
      `| ${r.nemesis}${
        r.error === undefined ? "" : " (run failed)"
      } | ${r.wait} | ${r.invoked} | ${r.acked} | ${r.lost}${
        r.lost > 0 && r.expected.lostAcknowledged ? " (expected)" : ""
      } | ${r.duplicated} | ${r.unknown} | ${r.failedButPresent} | ${r.fencingViolations} | ${r.holderOverlapMs}${
        r.holderOverlapMs > 0 && r.expected.holderOverlap ? " (expected)" : ""
      } | ${r.longestUnavailableMs} | ${
        r.replicaReads === undefined
          ? "-"
          : `${r.replicaReads.byReplica}/${r.replicaReads.reads} (${r.replicaReads.stale} / ${r.replicaReads.readYourWrites})`
      } |`
    ),
    "",
    ...reports.flatMap((r) => r.notes.map((n) => `- ${n}`)),
    "",
  ].join("\n");
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
