/**
 * The options of the HA client: of the client as a whole, and of one
 * operation.
 *
 * @module
 */

import type { Clock } from "../common/clock.ts";
import type { Config } from "./config.ts";
import type { ClientMetrics } from "./client_metrics.ts";
import type { HaEventEmitter } from "./events.ts";

/** Options for `RedisHaClient.connect`. */
export interface ClientOptions {
  /** `CLIENT SETNAME` on every connection. @default {"mn-redis-ha"} */
  clientName?: string | undefined;
  /**
   * How often the active probe checks the primary; in sentinel mode at most
   * a quarter of the sentinels' `down-after-milliseconds`, so a healthy idle
   * primary never looks silent (see the module docs). @default {1000}
   */
  probeIntervalMs?: number | undefined;
  /** How long the probe waits for `ROLE`. @default {1000} */
  probeTimeoutMs?: number | undefined;
  /**
   * Deadline per node for TCP connect, TLS handshake and the
   * AUTH/SELECT/PING handshake, and for the `ROLE` confirmation. @default {2000}
   */
  connectTimeoutMs?: number | undefined;
  /**
   * Deadline of a replica's answer to a read (`ROLE` and the read); past it
   * the next replica or the primary serves the read and that replica is
   * left alone for a while. Connecting to a replica may take twice this.
   * @default {250}
   */
  replicaTimeoutMs?: number | undefined;
  /** Per-sentinel deadline for connect plus answer, and for a subscription. @default {500} */
  sentinelTimeoutMs?: number | undefined;
  /**
   * Default deadline of every operation (`command`, `durable`, `runScript`),
   * retries included; a call's own `timeoutMs` overrides it. On expiry the
   * call rejects with `AbortedError`. @default {undefined} (bounded by
   * the reconnect attempts and the probe only)
   */
  operationTimeoutMs?: number | undefined;
  /**
   * Deadline of `RedisHaClient.connect` as a whole: resolving the
   * primary, connecting and every retry. Long enough to ride out a Sentinel
   * failover in progress at start-up (join's `--down-after-ms` is 5000); when
   * it passes, `connect` rejects with `RetriesExhaustedError` naming
   * this option and the last error (with defaults and only a frozen
   * sentinel, after 10 s). Later reconnects are bounded by
   * `MN_REDIS_RECONNECT_ATTEMPTS` instead. @default {10000}
   */
  firstConnectTimeoutMs?: number | undefined;
  /** Aborts `connect` (it then rejects with `AbortedError`). */
  signal?: AbortSignal | undefined;
  /** Random source for backoff jitter. @default {Math.random} */
  random?: (() => number) | undefined;
  /**
   * The clock the timing logic runs on (probe, backoff, silence guard), for
   * tests. @default {SYSTEM_CLOCK} (`performance.now()` and timers)
   */
  clock?: Clock | undefined;
  /**
   * Extra CA certificates (PEM) trusted for TLS to data nodes and sentinels,
   * e.g. a private Redis CA. The CLI and binary can use `DENO_CERT` instead.
   */
  tlsCaCerts?: readonly string[] | undefined;
}

/** Options for one command. */
export interface CommandOptions {
  /**
   * The command may be resent when its outcome is unknown (it was written
   * but the connection failed before the reply). @default {false}
   */
  idempotent?: boolean | undefined;
  /**
   * Abandons the command and its retries: it rejects with
   * `AbortedError`, whose `mayHaveApplied` says whether it had been
   * written (a written command still runs on the server).
   */
  signal?: AbortSignal | undefined;
  /** Deadline for this call, retries included. @default {ClientOptions.operationTimeoutMs} */
  timeoutMs?: number | undefined;
  /**
   * Return bulk replies as raw bytes (`Uint8Array`), for binary values. By
   * default they are decoded as UTF-8 strings, as other Redis clients return
   * them. @default {false}
   */
  bytes?: boolean | undefined;
}

/** What the client's parts (its link to the primary, the reconnect loop) share. */
export interface ClientParts {
  /** The configuration in force. */
  readonly config: Config;
  /** The client's options (timeouts, TLS CAs, jitter, clock). */
  readonly options: ClientOptions;
  /** The client's metrics. */
  readonly metrics: ClientMetrics;
  /** The client's events. */
  readonly emitter: HaEventEmitter;
}
