/**
 * The soak's verdicts and picture, from its samples: pure functions,
 * unit-tested (`tests/chaos/soak_analysis_test.ts`).
 *
 * @module
 */

import { type ClockStep, describeClockSteps } from "../chaos/wall_clock_watch.ts";
import type { Verdict } from "../chaos/checker.ts";

/** One client process in a sample. */
export interface ProcessSample {
  readonly name: string;
  /** RSS after a full GC, MiB. */
  readonly rssMb: number;
  /** V8 heap in use after a full GC, MiB. */
  readonly heapMb: number;
  /**
   * Open file descriptors other than pipes: the pipes of the short-lived
   * commands a process runs (the soak's own `ss`, `ls`, `iptables`) come and
   * go with the sample.
   */
  readonly fds: number;
  /** TCP connections. */
  readonly tcp: number;
}

/** Every 5 s (and right before each fault): every process and node. */
export interface Sample {
  /** History ms. */
  readonly at: number;
  /** Sentinel's failovers so far. */
  readonly failovers: number;
  /** Taken right before a fault: the cluster has settled from the previous one. */
  readonly settled: boolean;
  readonly processes: readonly ProcessSample[];
  /** Per box; null while the node is down or cut off. */
  readonly redis: readonly {
    box: number;
    usedMemoryMb: number | null;
    connectedClients: number | null;
  }[];
  readonly sentinels: readonly { box: number; connectedClients: number | null }[];
}

/** A least-squares slope of `y` on `x` (undefined with fewer than 2 distinct `x`). */
export function slope(points: readonly { x: number; y: number }[]): number | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  if (sxx === 0) return undefined;
  return points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx;
}

/** The memory target: at most this much growth per 100 failovers. */
export const MB_PER_100_FAILOVERS = 1;
/** Failovers before the memory slope is measured (V8's heap and the JIT settle first). */
export const WARM_UP_FAILOVERS = 2;
/**
 * A memory slope is judged only over at least this many failovers after the
 * warm-up, and ten minutes: a short soak's slope is its warm-up, not a leak
 * (it is reported, not judged).
 */
export const JUDGED_AFTER = { failovers: 10, ms: 10 * 60_000 } as const;

/** One verdict line. */
export interface SoakVerdict {
  readonly target: string;
  readonly value: string;
  /** `null`: not judged (too few failovers for a slope). */
  readonly pass: boolean | null;
}

/** What the soak reports. */
export interface SoakReport {
  readonly durationMs: number;
  readonly everyMs: number;
  readonly clients: number;
  readonly faults: number;
  readonly failovers: number;
  readonly checker: Omit<Verdict, "findings"> & { findings: Verdict["findings"] };
  /** Per process: growth per 100 failovers and per hour after the warm-up, MiB. */
  readonly memory: {
    name: string;
    rssPer100Failovers: number | null;
    heapPer100Failovers: number | null;
    rssPerHour: number | null;
    heapPerHour: number | null;
  }[];
  /** Settled samples whose counts were above the baseline. */
  readonly leaks: string[];
  /** Steps of the wall clock during the run. */
  readonly clockSteps: readonly ClockStep[];
  readonly verdicts: SoakVerdict[];
  readonly pass: boolean;
  readonly error?: string | undefined;
  readonly markdown: string;
}

const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Sum of a per-node count; null when any node did not answer (down, cut off). */
function total(values: readonly { connectedClients: number | null }[]): number | null {
  return values.some((v) => v.connectedClients === null)
    ? null
    : values.reduce((s, v) => s + v.connectedClients!, 0);
}

/** The sample leaks are counted against: the first settled one after the warm-up. */
export function leakBaseline(samples: readonly Sample[]): Sample | undefined {
  return samples.find((s) => s.settled && s.failovers >= WARM_UP_FAILOVERS);
}

/**
 * What `s` holds above `base`: file descriptors or TCP connections of a
 * process, or the `connected_clients` total of the Redis nodes or the
 * sentinels (a node that did not answer is not counted).
 */
export function leaksSince(base: Sample, s: Sample): string[] {
  const leaks: string[] = [];
  const at = `at ${Math.round(s.at / 1000)} s (${s.failovers} failovers)`;
  for (const p of s.processes) {
    const b = base.processes.find((x) => x.name === p.name);
    if (b === undefined) continue;
    if (p.fds > b.fds) leaks.push(`${p.name}: ${p.fds} fds ${at}, baseline ${b.fds}`);
    if (p.tcp > b.tcp) leaks.push(`${p.name}: ${p.tcp} TCP connections ${at}, baseline ${b.tcp}`);
  }
  for (
    const [what, now, then] of [
      ["Redis connected_clients (all nodes)", total(s.redis), total(base.redis)],
      ["Sentinel connected_clients (all)", total(s.sentinels), total(base.sentinels)],
    ] as const
  ) {
    if (now !== null && then !== null && now > then) {
      leaks.push(`${what}: ${now} ${at}, baseline ${then}`);
    }
  }
  return leaks;
}

/**
 * Which settled samples (after the warm-up) hold more file descriptors, TCP
 * connections or `connected_clients` than the first of them: a leak shows
 * as a count that does not come back after a failover.
 */
export function baselineLeaks(samples: readonly Sample[]): string[] {
  const base = leakBaseline(samples);
  if (base === undefined) return [];
  return samples.filter((s) => s.settled && s.failovers >= WARM_UP_FAILOVERS && s !== base)
    .flatMap((s) => leaksSince(base, s));
}

/** The soak's verdicts from its samples and the checker's verdict. */
export function soakVerdicts(
  samples: readonly Sample[],
  checker: Verdict,
  run: {
    faults: readonly unknown[];
    durationMs: number;
    everyMs: number;
    clients: number;
    /** Steps of the wall clock seen during the run (see `wall_clock_watch.ts`). */
    clockSteps?: readonly ClockStep[] | undefined;
    error?: string | undefined;
  },
): SoakReport {
  const failovers = samples.at(-1)?.failovers ?? 0;
  const warm = samples.filter((s) => s.failovers >= WARM_UP_FAILOVERS);
  const names = [...new Set(samples.flatMap((s) => s.processes.map((p) => p.name)))];
  const memory = names.map((name) => {
    const series = warm.flatMap((s) => {
      const p = s.processes.find((x) => x.name === name);
      return p === undefined ? [] : [{ s, p }];
    });
    const per = (key: "rssMb" | "heapMb", x: (s: Sample) => number, scale: number) => {
      const k = slope(series.map(({ s, p }) => ({ x: x(s), y: p[key] })));
      return k === undefined ? null : round(k * scale);
    };
    return {
      name,
      rssPer100Failovers: per("rssMb", (s) => s.failovers, 100),
      heapPer100Failovers: per("heapMb", (s) => s.failovers, 100),
      rssPerHour: per("rssMb", (s) => s.at, 3_600_000),
      heapPerHour: per("heapMb", (s) => s.at, 3_600_000),
    };
  });
  const leaks = baselineLeaks(samples);
  const judged = warm.length > 1 &&
    warm.at(-1)!.failovers - warm[0]!.failovers >= JUDGED_AFTER.failovers &&
    warm.at(-1)!.at - warm[0]!.at >= JUDGED_AFTER.ms;
  const verdicts: SoakVerdict[] = [
    {
      target: "checker: nothing acknowledged lost or duplicated, no failed write present, " +
        "fencing kept, no holder overlap",
      value:
        `lost ${checker.lost}, duplicated ${checker.duplicated}, failed but present ${checker.failedButPresent}, ` +
        `fencing ${checker.fencingViolations}, overlap ${checker.holderOverlapMs} ms`,
      pass: checker.lost === 0 && checker.duplicated === 0 && checker.failedButPresent === 0 &&
        checker.fencingViolations === 0 && checker.holderOverlapMs === 0,
    },
  ];
  for (const m of memory) {
    for (
      const [what, value] of [["RSS", m.rssPer100Failovers], [
        "heap",
        m.heapPer100Failovers,
      ]] as const
    ) {
      verdicts.push({
        target:
          `${m.name}: ${what} growth ≤ ${MB_PER_100_FAILOVERS} MB per 100 failovers (after ${WARM_UP_FAILOVERS})`,
        value: value === null
          ? "too few failovers for a slope"
          : `${value} MB${
            judged ? "" : ` (not judged: under ${JUDGED_AFTER.failovers} failovers or 10 min)`
          }`,
        pass: value === null || !judged ? null : value <= MB_PER_100_FAILOVERS,
      });
    }
  }
  verdicts.push({
    target: "file descriptors, TCP connections and every connected_clients total back at " +
      "their baseline before each fault",
    value: leaks.length === 0 ? "always" : `${leaks.length} times, e.g. ${leaks[0]}`,
    pass: leaks.length === 0,
  });
  const pass = run.error === undefined && verdicts.every((v) => v.pass !== false);
  const lines = [
    `# Soak: ${Math.round(run.durationMs / 60_000)} min, a fault every ${run.everyMs / 1000} s, ` +
    `${run.clients} node clients`,
    "",
    `${run.faults.length} faults, ${failovers} failovers, ${checker.acked} of ${checker.invoked} ` +
    `operations acknowledged (${checker.unknown} unknown, ${checker.failed} failed).`,
    "",
    // Redis expires leases by the wall clock: a forward step explains a holder overlap (fencing
    // then keeps the stale holder's writes out).
    `${describeClockSteps(run.clockSteps ?? [])}.`,
    "",
    "| target | measured | verdict |",
    "| --- | --- | --- |",
    ...verdicts.map((v) =>
      `| ${v.target} | ${v.value} | ${v.pass === null ? "n/a" : v.pass ? "PASS" : "FAIL"} |`
    ),
    "",
    "| process | RSS MB/100 failovers | heap MB/100 failovers | RSS MB/h | heap MB/h |",
    "| --- | --- | --- | --- | --- |",
    ...memory.map((m) =>
      `| ${m.name} | ${m.rssPer100Failovers ?? "–"} | ${m.heapPer100Failovers ?? "–"} | ${
        m.rssPerHour ?? "–"
      } | ${m.heapPerHour ?? "–"} |`
    ),
    "",
    ...(run.error === undefined ? [] : [`**The soak failed:** ${run.error}`, ""]),
    "![soak](soak.svg)",
    "",
  ];
  return {
    durationMs: run.durationMs,
    everyMs: run.everyMs,
    clients: run.clients,
    faults: run.faults.length,
    failovers,
    checker: { ...checker, findings: checker.findings.slice(0, 50) },
    memory,
    leaks,
    clockSteps: run.clockSteps ?? [],
    verdicts,
    pass,
    error: run.error,
    markdown: lines.join("\n"),
  };
}

/** Memory, descriptors and connections over time, the faults marked: an SVG. */
export function soakSvg(
  samples: readonly Sample[],
  faults: readonly { name: string; from: number; to: number }[],
): string {
  const width = 900, panel = 170, top = 30, left = 60, right = 20;
  const endMs = Math.max(1, ...samples.map((s) => s.at), ...faults.map((f) => f.to));
  const x = (ms: number): number => left + (ms / endMs) * (width - left - right);
  const colours = ["#1a73e8", "#e8710a", "#188038", "#a142f4", "#d93025", "#12b5cb"];
  const parts: string[] = [];
  const names = [...new Set(samples.flatMap((s) => s.processes.map((p) => p.name)))];
  // One series per client process and figure.
  const perProcess = (figures: [label: string, key: "rssMb" | "heapMb" | "fds" | "tcp"][]) =>
    names.flatMap((n) =>
      figures.map(([label, key]) => ({
        label: `${n} ${label}`,
        points: pointsOf(samples, (s) => s.processes.find((p) => p.name === n)?.[key]),
      }))
    );
  const panels: { title: string; series: { label: string; points: [number, number][] }[] }[] = [
    {
      title: "client processes: RSS and heap after a full GC (MiB)",
      series: perProcess([["RSS", "rssMb"], ["heap", "heapMb"]]),
    },
    {
      title: "client processes: open file descriptors and TCP connections",
      series: perProcess([["fds", "fds"], ["tcp", "tcp"]]),
    },
    {
      title: "connected_clients: all Redis nodes, all sentinels",
      series: [
        { label: "redis", points: pointsOf(samples, (s) => total(s.redis) ?? undefined) },
        { label: "sentinels", points: pointsOf(samples, (s) => total(s.sentinels) ?? undefined) },
      ],
    },
  ];
  const height = top + panels.length * (panel + 30) + 10;
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="16" font-size="13">Soak: ${samples.length} samples, ${faults.length} faults (red), ${
      samples.at(-1)?.failovers ?? 0
    } failovers</text>`,
  );
  panels.forEach((p, i) => {
    const y0 = top + i * (panel + 30) + 14;
    const values = p.series.flatMap((s) => s.points.map(([, v]) => v));
    const max = Math.max(1, ...values) * 1.05;
    const y = (v: number): number => y0 + panel - (v / max) * panel;
    parts.push(`<text x="${left}" y="${y0 - 4}">${p.title}</text>`);
    parts.push(
      `<rect x="${left}" y="${y0}" width="${
        width - left - right
      }" height="${panel}" fill="none" stroke="#ccc"/>`,
    );
    parts.push(`<text x="${left - 4}" y="${y0 + 10}" text-anchor="end">${Math.round(max)}</text>`);
    parts.push(`<text x="${left - 4}" y="${y0 + panel}" text-anchor="end">0</text>`);
    for (const f of faults) {
      parts.push(
        `<line x1="${x(f.from).toFixed(1)}" y1="${y0}" x2="${x(f.from).toFixed(1)}" y2="${
          y0 + panel
        }" stroke="#d93025" stroke-opacity="0.5"><title>${f.name}</title></line>`,
      );
    }
    p.series.forEach((s, j) => {
      if (s.points.length === 0) return;
      const d = s.points.map(([t, v], k) =>
        `${k === 0 ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`
      ).join(" ");
      parts.push(
        `<path d="${d}" fill="none" stroke="${
          colours[j % colours.length]
        }" stroke-width="1.5"><title>${s.label}</title></path>`,
      );
      parts.push(
        `<text x="${width - right - 4}" y="${y0 + 12 + j * 12}" text-anchor="end" fill="${
          colours[j % colours.length]
        }">${s.label}</text>`,
      );
    });
  });
  parts.push(
    `<text x="${(width + left) / 2}" y="${height - 4}" text-anchor="middle">seconds: 0 – ${
      Math.round(endMs / 1000)
    }</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

function pointsOf(
  samples: readonly Sample[],
  value: (s: Sample) => number | undefined,
): [number, number][] {
  return samples.flatMap((s) => {
    const v = value(s);
    return v === undefined || !Number.isFinite(v) ? [] : [[s.at, v] as [number, number]];
  });
}
