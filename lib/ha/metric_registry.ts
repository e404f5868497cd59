/**
 * The client's own metrics, with no metrics dependency: counters, gauges and
 * histograms with labels, rendered as Prometheus text (0.0.4) or OpenMetrics
 * 1.0, plus `node:diagnostics_channel` channels for bridging to
 * OpenTelemetry or anything else.
 *
 * @module
 */

import diagnostics from "node:diagnostics_channel";

/** The prefix of every series. */
export const METRIC_PREFIX = "mn_redis_ha_";

/**
 * The `node:diagnostics_channel` channels the client publishes on, so an
 * application can subscribe (e.g. to feed OpenTelemetry) without this
 * package depending on it.
 */
export const DIAGNOSTICS_CHANNELS = {
  /** Every command, script or durable write: `{ operation, durationMs, outcome }`. */
  operation: "mn-redis-ha:operation",
  /** A durable write's outcome: `{ outcome }` (`confirmed`, `under_replicated`, `failed`, `indeterminate`). */
  write: "mn-redis-ha:write",
  /** The primary changed: `{ from, to, configEpoch, source }`. */
  failover: "mn-redis-ha:failover",
  /** Durable writes were impossible for `seconds` around a failover: `{ seconds, from, to }`. */
  unavailability: "mn-redis-ha:unavailability",
  /** A session was taken out of service: `{ reason, primary }`. */
  reconnect: "mn-redis-ha:reconnect",
} as const;

/** Publishes `message` on `channel` when someone subscribed (free otherwise). */
export function publish(channel: string, message: unknown): void {
  const ch = diagnostics.channel(channel);
  if (ch.hasSubscribers) ch.publish(message);
}

/**
 * Whether anyone subscribed to `channel`: a caller on a hot path checks
 * this before it builds a message for {@link publish}.
 */
export function hasSubscribers(channel: string): boolean {
  return diagnostics.hasSubscribers(channel);
}

/** Output formats of {@link MetricRegistry.render}. */
export type MetricsFormat = "prometheus" | "openmetrics";

/** The content type of a format, for an HTTP response. */
export function metricsContentType(format: MetricsFormat): string {
  return format === "openmetrics"
    ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
    : "text/plain; version=0.0.4; charset=utf-8";
}

type Labels = Readonly<Record<string, string>>;

/** One histogram series, looked up once (see {@link MetricRegistry.histogramSeries}). */
export interface HistogramSeries {
  /** Records one observation. */
  observe(value: number): void;
}

type Series = { labels: Labels; value: number; counts?: number[]; sum?: number };

/** Records `value` in a histogram series with `buckets`. */
function record(series: Series, buckets: readonly number[], value: number): void {
  series.value++;
  series.sum! += value;
  for (let i = 0; i < buckets.length; i++) {
    if (value <= buckets[i]!) {
      series.counts![i]!++;
      break;
    }
  }
}

interface Family {
  /** The series name as rendered (with {@link METRIC_PREFIX} unless declared bare). */
  readonly name: string;
  readonly type: "counter" | "gauge" | "histogram" | "info";
  readonly help: string;
  readonly unit: string | undefined;
  readonly buckets: readonly number[] | undefined;
  readonly series: Map<string, Series>;
}

/** Default buckets for operation durations (OpenTelemetry's advice for database clients). */
export const DURATION_BUCKETS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  10,
];

/** Buckets for failover unavailability (seconds): Sentinel failovers take a few seconds. */
export const UNAVAILABILITY_BUCKETS: readonly number[] = [
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2,
  3,
  5,
  10,
  30,
  60,
];

function key(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join("\u0000");
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function formatLabels(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra !== undefined) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function formatNumber(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (Number.isNaN(n)) return "NaN";
  return String(n);
}

/** A set of metric families with labelled series. */
export class MetricRegistry {
  readonly #families = new Map<string, Family>();

  #family(
    name: string,
    type: Family["type"],
    help: string,
    unit?: string,
    buckets?: readonly number[],
    bare = false,
  ): Family {
    let family = this.#families.get(name);
    if (family === undefined) {
      family = {
        name: bare ? name : METRIC_PREFIX + name,
        type,
        help,
        unit,
        buckets,
        series: new Map(),
      };
      this.#families.set(name, family);
    }
    return family;
  }

  /**
   * Declares a counter (`name` without `_total`), so it renders even before
   * its first count; `known` label values get a series at 0 from the start
   * (Prometheus conventions: `rate()` and alerts work before the first event).
   */
  counter(name: string, help: string, known?: { label: string; values: readonly string[] }): void {
    const family = this.#family(name, "counter", help);
    if (known === undefined && family.series.size === 0) {
      family.series.set(key({}), { labels: {}, value: 0 });
    }
    for (const value of known?.values ?? []) {
      const labels = { [known!.label]: value };
      if (!family.series.has(key(labels))) family.series.set(key(labels), { labels, value: 0 });
    }
  }

  /** Adds `by` (default 1) to a counter's series. */
  inc(name: string, labels: Labels = {}, by = 1): void {
    const family = this.#families.get(name);
    if (family === undefined) throw new Error(`undeclared metric ${name}`);
    const k = key(labels);
    const series = family.series.get(k);
    if (series === undefined) family.series.set(k, { labels, value: by });
    else series.value += by;
  }

  /** Sets a gauge's series. */
  set(name: string, help: string, value: number, labels: Labels = {}, unit?: string): void {
    this.#family(name, "gauge", help, unit).series.set(key(labels), { labels, value });
  }

  /** Sets an info family's one series (value 1): labels describe a state. */
  info(name: string, help: string, labels: Labels): void {
    const family = this.#family(name, "info", help);
    family.series.clear();
    family.series.set(key(labels), { labels, value: 1 });
  }

  /**
   * Declares a histogram with `buckets` (upper bounds, ascending). One
   * without labels renders zero buckets from the start. `bare` renders the
   * name without {@link METRIC_PREFIX}, for a standard name (OpenTelemetry's
   * `db_client_operation_duration_seconds`) that dashboards look for as is.
   */
  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    options: { unit?: string | undefined; labelled?: boolean | undefined; bare?: boolean } = {},
  ): void {
    const family = this.#family(name, "histogram", help, options.unit, buckets, options.bare);
    if (options.labelled !== true && family.series.size === 0) {
      family.series.set(key({}), {
        labels: {},
        value: 0,
        counts: new Array(buckets.length).fill(0),
        sum: 0,
      });
    }
  }

  /** Records one observation in a histogram's series. */
  observe(name: string, value: number, labels: Labels = {}): void {
    this.histogramSeries(name, labels).observe(value);
  }

  /**
   * A histogram's series for `labels` (created at its first use), to record
   * into without looking it up again: for a caller that records the same
   * series on every operation.
   */
  histogramSeries(name: string, labels: Labels = {}): HistogramSeries {
    const family = this.#families.get(name);
    if (family?.buckets === undefined) throw new Error(`undeclared histogram ${name}`);
    const k = key(labels);
    let series = family.series.get(k);
    if (series === undefined) {
      series = { labels, value: 0, counts: new Array(family.buckets.length).fill(0), sum: 0 };
      family.series.set(k, series);
    }
    const buckets = family.buckets;
    const target = series;
    return { observe: (value) => record(target, buckets, value) };
  }

  /** Adds 1 to a counter's series, returned as a function for a caller that counts it often. */
  counterSeries(name: string, labels: Labels = {}): () => void {
    this.inc(name, labels, 0); // the series exists from now on
    const series = this.#families.get(name)!.series.get(key(labels))!;
    return () => series.value++;
  }

  /** A series' current value (a counter's or gauge's value, a histogram's count). */
  value(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.series.get(key(labels))?.value ?? 0;
  }

  /** A histogram series' sum of observations. */
  sum(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.series.get(key(labels))?.sum ?? 0;
  }

  /** Renders every family (named with {@link METRIC_PREFIX} unless declared bare). */
  render(format: MetricsFormat = "prometheus"): string {
    const lines: string[] = [];
    for (const family of this.#families.values()) {
      renderFamily(family, format, lines);
    }
    if (format === "openmetrics") lines.push("# EOF");
    return lines.join("\n") + "\n";
  }
}

function renderFamily(family: Family, format: MetricsFormat, lines: string[]): void {
  const open = format === "openmetrics";
  const base = family.name;
  // Prometheus text has no info type: an info family is a gauge named *_info.
  const typeName = family.type === "info"
    ? open ? base : `${base}_info`
    : family.type === "counter" && !open
    ? `${base}_total`
    : base;
  const type = family.type === "info" && !open ? "gauge" : family.type;
  lines.push(`# TYPE ${typeName} ${type}`);
  if (open && family.unit !== undefined) lines.push(`# UNIT ${typeName} ${family.unit}`);
  lines.push(`# HELP ${typeName} ${family.help}`);
  for (const series of family.series.values()) {
    if (family.type === "histogram") {
      let cumulative = 0;
      family.buckets!.forEach((bound, i) => {
        cumulative += series.counts![i]!;
        lines.push(
          `${base}_bucket${formatLabels(series.labels, ["le", formatNumber(bound)])} ${cumulative}`,
        );
      });
      lines.push(`${base}_bucket${formatLabels(series.labels, ["le", "+Inf"])} ${series.value}`);
      lines.push(`${base}_count${formatLabels(series.labels)} ${series.value}`);
      lines.push(`${base}_sum${formatLabels(series.labels)} ${formatNumber(series.sum!)}`);
    } else if (family.type === "counter") {
      lines.push(`${base}_total${formatLabels(series.labels)} ${formatNumber(series.value)}`);
    } else if (family.type === "info") {
      lines.push(`${base}_info${formatLabels(series.labels)} 1`);
    } else {
      lines.push(`${base}${formatLabels(series.labels)} ${formatNumber(series.value)}`);
    }
  }
}
