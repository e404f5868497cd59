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
  MetricRegistry,
  type MetricsFormat,
  publish,
  UNAVAILABILITY_BUCKETS,
} from "./metrics.ts";

/** What became of a durable write. */
export type WriteOutcome = "confirmed" | "under_replicated" | "failed" | "indeterminate";

/** What made the client notice a failover. */
export type FailoverSource = "sentinel_event" | "role_mismatch" | "probe" | "connection";

/** The client's metrics. */
export class ClientMetrics {
  readonly registry: MetricRegistry = new MetricRegistry();
  /** performance.now() of the start of the earliest durable attempt that failed, if unresolved. */
  #unavailableSince: number | undefined;
  #unavailablePrimary: string | undefined;

  constructor() {
    const r = this.registry;
    r.info("build", "The mn-redis-ha library version.", { version: VERSION });
    r.counter(
      "writes",
      "Durable writes by outcome: confirmed, under_replicated (WAIT shortfall), failed, indeterminate (outcome unknown).",
    );
    r.counter("reconnects", "Sessions to the primary taken out of service, by reason.");
    r.counter("errors", "Failed attempts of commands and writes, by category.");
    r.counter("failovers", "Primary changes the client followed, by what made it notice.");
    r.histogram(
      "failover_unavailability_seconds",
      "From the start of the first durable write that could not be made to the first that succeeded on the new primary.",
      UNAVAILABILITY_BUCKETS,
      "seconds",
    );
    r.histogram(
      "db_client_operation_duration_seconds",
      "Duration of database client operations (OpenTelemetry db.client.operation.duration).",
      DURATION_BUCKETS,
      "seconds",
    );
  }

  /** One operation finished (`ok` or not), `seconds` after it started. */
  operation(name: string, seconds: number, ok: boolean): void {
    const labels: Record<string, string> = {
      db_operation_name: name,
      db_system_name: "redis",
    };
    if (!ok) labels.error_type = "error";
    this.registry.observe("db_client_operation_duration_seconds", seconds, labels);
    publish(DIAGNOSTICS_CHANNELS.operation, { operation: name, durationMs: seconds * 1000, ok });
  }

  /** A durable write ended with `outcome`. */
  write(outcome: WriteOutcome): void {
    this.registry.inc("writes", { outcome });
    publish(DIAGNOSTICS_CHANNELS.write, { outcome });
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

  /** The confirmed primary, as series: its address and replid as info, its config-epoch as gauge. */
  primary(address: string, replid: string, configEpoch: number | undefined): void {
    this.registry.info("primary", "The primary the client writes to.", { address, replid });
    if (configEpoch !== undefined) {
      this.registry.set("config_epoch", "Sentinel config-epoch of the primary.", configEpoch);
    }
  }

  /** A durable attempt started at `startedAt` (performance.now()) failed on `primary`. */
  durableFailed(startedAt: number, primary: string): void {
    if (this.#unavailableSince === undefined || startedAt < this.#unavailableSince) {
      this.#unavailableSince = startedAt;
    }
    this.#unavailablePrimary ??= primary;
  }

  /** A durable write succeeded on `primary`: closes an unavailability window that a failover ended. */
  durableSucceeded(primary: string): void {
    const since = this.#unavailableSince;
    if (since === undefined) return;
    const from = this.#unavailablePrimary;
    this.#unavailableSince = undefined;
    this.#unavailablePrimary = undefined;
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
