/**
 * The series an {@link RedisHaClient} keeps about itself: write outcomes,
 * reconnects, errors, failovers and how long durable writes were impossible
 * around each, and operation durations (the OpenTelemetry database-client
 * histogram). Each record is also published on a diagnostics channel.
 *
 * @module
 */

import { VERSION } from "../common/version.ts";
import {
  DIAGNOSTICS_CHANNELS,
  DURATION_BUCKETS,
  hasSubscribers,
  type HistogramSeries,
  MetricRegistry,
  type MetricsFormat,
  publish,
  UNAVAILABILITY_BUCKETS,
} from "./metric_registry.ts";

/** What became of a durable write. */
export type WriteOutcome = "confirmed" | "under_replicated" | "failed" | "indeterminate";

/** What made the client notice a failover. */
export type FailoverSource = "sentinel_event" | "role_mismatch" | "probe" | "connection";

const WRITE_OUTCOMES: readonly WriteOutcome[] = [
  "confirmed",
  "under_replicated",
  "failed",
  "indeterminate",
];
const FAILOVER_SOURCES: readonly FailoverSource[] = [
  "sentinel_event",
  "role_mismatch",
  "probe",
  "connection",
];
/** Failures of an attempt that mean the primary could not serve it (see `failures.ts`). */
const FAILURE_CATEGORIES: readonly string[] = [
  "connection",
  "readonly",
  "loading",
  "masterdown",
  "tryagain",
  "noreplicas",
];
/** Why sessions are taken out of service: a failure, or what noticed a failover. */
const RECONNECT_REASONS: readonly string[] = [
  ...FAILURE_CATEGORIES,
  "probe",
  "sentinel_event",
  "role_mismatch",
];
/** Categories of failed attempts the client knows in advance (others appear when seen). */
const ERROR_CATEGORIES: readonly string[] = [
  ...FAILURE_CATEGORIES,
  "wait",
  "aborted",
  "fenced",
  "state",
  "noperm",
  "other",
];

/** Who served a read: a replica, the primary by policy, the primary because no replica could. */
const READ_SERVERS: readonly string[] = ["replica", "primary", "primary_fallback"];
/** Why a replica was skipped for a read (see `replica_reads.ts`). */
const REPLICA_SKIP_REASONS: readonly string[] = [
  "lagging",
  "link_down",
  "not_replica",
  "other_primary",
  "timeout",
  "unreachable",
  "refused",
];

/** The OpenTelemetry database-client histogram, under its standard name (no project prefix). */
export const OPERATION_DURATION = "db_client_operation_duration_seconds";

/** A failover window not yet closed: since when operations could not be served, and where. */
interface Window {
  readonly since: number;
  readonly from: string;
  /** An operation failed or waited in it (else it closes when the new primary is reached). */
  affected: boolean;
}

/** The client's metrics. */
export class ClientMetrics {
  readonly registry: MetricRegistry = new MetricRegistry();
  #window: Window | undefined;
  /**
   * When the last window closed: an operation that started before it was
   * already inside that window, so it cannot open another one.
   */
  #closedAt = -Infinity;
  /** Operation duration series by operation name: succeeded, failed. */
  readonly #succeeded = new Map<string, HistogramSeries>();
  readonly #failed = new Map<string, HistogramSeries>();
  /** Durable write counters by outcome. */
  readonly #writes = new Map<WriteOutcome, () => void>();
  /** Read counters by who served them. */
  readonly #reads = new Map<string, () => void>();

  constructor() {
    const r = this.registry;
    r.info("build", "The mn-redis-ha library version.", { version: VERSION });
    r.counter(
      "writes",
      "Durable writes by outcome: confirmed, under_replicated (WAIT shortfall), failed, indeterminate (outcome unknown).",
      { label: "outcome", values: WRITE_OUTCOMES },
    );
    r.counter("reconnects", "Sessions to the primary taken out of service, by reason.", {
      label: "reason",
      values: RECONNECT_REASONS,
    });
    r.counter("errors", "Failed attempts of commands and writes, by category.", {
      label: "category",
      values: ERROR_CATEGORIES,
    });
    r.counter("failovers", "Primary changes the client followed, by what made it notice.", {
      label: "source",
      values: FAILOVER_SOURCES,
    });
    r.counter(
      "reads",
      "Reads through read() and the state API's reads, by who served them: replica, primary (the policy), primary_fallback (a replica was wanted, none could prove it was recent enough).",
      { label: "served_by", values: READ_SERVERS },
    );
    r.counter(
      "replica_read_skips",
      "Replicas skipped for a read, by reason: lagging, link_down, not_replica, other_primary, timeout, unreachable, refused.",
      { label: "reason", values: REPLICA_SKIP_REASONS },
    );
    r.counter(
      "offset_samples",
      "ROLE samples of the primary's replication offset taken to prove replica reads fresh.",
    );
    r.counter("sentinel_connections", "Connections the client opened to sentinels.");
    r.counter("sentinel_commands", "Commands the client sent to sentinels.");
    r.histogram(
      "failover_unavailability_seconds",
      "From when the client's operations could no longer be served by the old primary (the first that failed or waited, or the loss of the primary when none was in flight) to the first that succeeded on the new one (or the new primary reached, when none waited).",
      UNAVAILABILITY_BUCKETS,
      { unit: "seconds" },
    );
    r.histogram(
      OPERATION_DURATION,
      "Duration of database client operations (OpenTelemetry db.client.operation.duration).",
      DURATION_BUCKETS,
      { unit: "seconds", labelled: true, bare: true },
    );
  }

  /** One operation finished (`ok` or not), `seconds` after it started. */
  operation(name: string, seconds: number, ok: boolean): void {
    // Every operation records here: its series is looked up once per name and outcome.
    const known = ok ? this.#succeeded : this.#failed;
    let series = known.get(name);
    if (series === undefined) {
      const labels: Record<string, string> = { db_operation_name: name, db_system_name: "redis" };
      if (!ok) labels.error_type = "error";
      series = this.registry.histogramSeries(OPERATION_DURATION, labels);
      known.set(name, series);
    }
    series.observe(seconds);
    if (hasSubscribers(DIAGNOSTICS_CHANNELS.operation)) {
      publish(DIAGNOSTICS_CHANNELS.operation, { operation: name, durationMs: seconds * 1000, ok });
    }
  }

  /** A read was served by a replica or the primary (`fallback`: a replica was wanted). */
  read(servedBy: "replica" | "primary", fallback: boolean): void {
    const label = servedBy === "replica" ? "replica" : fallback ? "primary_fallback" : "primary";
    let count = this.#reads.get(label);
    if (count === undefined) {
      count = this.registry.counterSeries("reads", { served_by: label });
      this.#reads.set(label, count);
    }
    count();
  }

  /** A replica was skipped for a read because of `reason`. */
  replicaSkipped(reason: string): void {
    this.registry.inc("replica_read_skips", { reason });
  }

  /** A sample of the primary's offset was taken. */
  offsetSample(): void {
    this.registry.inc("offset_samples");
  }

  /** A durable write ended with `outcome`. */
  write(outcome: WriteOutcome): void {
    let count = this.#writes.get(outcome);
    if (count === undefined) {
      count = this.registry.counterSeries("writes", { outcome });
      this.#writes.set(outcome, count);
    }
    count();
    if (hasSubscribers(DIAGNOSTICS_CHANNELS.write)) {
      publish(DIAGNOSTICS_CHANNELS.write, { outcome });
    }
  }

  /** An attempt failed with an error of `category` (`connection`, `readonly`, `fenced`, …). */
  error(category: string): void {
    this.registry.inc("errors", { category });
  }

  /** A session was taken out of service for `reason`. */
  reconnect(reason: string, primary: string): void {
    this.registry.inc("reconnects", { reason });
    publish(DIAGNOSTICS_CHANNELS.reconnect, { reason, primary });
  }

  /** The client now writes to a new primary. */
  failover(
    source: FailoverSource,
    detail: { from: string; to: string; configEpoch: number | undefined; replid: string },
  ): void {
    this.registry.inc("failovers", { source });
    this.registry.set(
      "last_failover_timestamp_seconds",
      "When the client last followed a failover (Unix time).",
      Date.now() / 1000,
      {},
      "seconds",
    );
    publish(DIAGNOSTICS_CHANNELS.failover, { ...detail, source });
  }

  /** The client opened a connection to a sentinel. */
  sentinelConnection(): void {
    this.registry.inc("sentinel_connections");
  }

  /** The client sent `count` commands to sentinels. */
  sentinelCommands(count: number): void {
    this.registry.inc("sentinel_commands", {}, count);
  }

  /** The confirmed primary, as series: its address and replid as info, its config-epoch as gauge. */
  primary(address: string, replid: string, configEpoch: number | undefined): void {
    this.registry.info("primary", "The primary the client writes to.", { address, replid });
    if (configEpoch !== undefined) {
      this.registry.set("config_epoch", "Sentinel config-epoch of the primary.", configEpoch);
    }
  }

  /** The session to `primary` was lost at `at` (performance.now()): a window opens, if none is. */
  primaryLost(at: number, primary: string): void {
    if (at < this.#closedAt) return;
    const window = this.#window;
    if (window === undefined || at < window.since) {
      this.#window = {
        since: at,
        from: window?.from ?? primary,
        affected: window?.affected ?? false,
      };
    }
  }

  /**
   * An operation started at `startedAt` failed because `primary` could not
   * serve it, or had to wait for a new session: the window reaches back to it.
   */
  operationAffected(startedAt: number, primary: string): void {
    if (startedAt < this.#closedAt) return;
    const window = this.#window;
    if (window === undefined || startedAt < window.since) {
      this.#window = { since: startedAt, from: window?.from ?? primary, affected: true };
    } else window.affected = true;
  }

  /**
   * A session to `primary` is in service. A window no operation was caught in
   * closes now (the client was ready again); otherwise the first success does.
   */
  sessionInstalled(primary: string): void {
    if (this.#window !== undefined && !this.#window.affected) this.#close(primary);
  }

  /** An operation succeeded on `primary`: closes an open window. */
  operationSucceeded(primary: string): void {
    if (this.#window !== undefined) this.#close(primary);
  }

  #close(primary: string): void {
    const { since, from } = this.#window!;
    this.#window = undefined;
    this.#closedAt = performance.now();
    if (from === primary) return; // A blip on the same primary: no failover to measure.
    const seconds = (performance.now() - since) / 1000;
    this.registry.observe("failover_unavailability_seconds", seconds);
    publish(DIAGNOSTICS_CHANNELS.unavailability, { seconds, from, to: primary });
  }

  /** Renders the series. */
  render(format: MetricsFormat): string {
    return this.registry.render(format);
  }
}
