/**
 * Subscribes to Sentinel events on several sentinels at once, so recovery
 * starts when Sentinel announces a new primary rather than when a backoff
 * timer fires. Events are hints: the client re-resolves on each.
 *
 * @module
 */

import { delay } from "../common/delay.ts";
import { RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { eventMasterName, parseSwitchMaster } from "./resolver_decision.ts";
import type { Secret } from "../common/secret.ts";
import type { SentinelObserver } from "./sentinel_resolver.ts";

/** The Sentinel channels watched. */
export const SENTINEL_CHANNELS: readonly string[] = [
  "+switch-master",
  "+odown",
  "-odown",
  "+sentinel",
  "+convert-to-slave",
  "+failover-end",
];

/** The channels of the replicas reads may go to (see replica_set.ts), for replica-reading clients. */
export const REPLICA_CHANNELS: readonly string[] = [
  "+slave",
  "+sdown",
  "-sdown",
  "+slave-reconf-done",
];

/** One event about the watched master. */
export interface SentinelEvent {
  /** The sentinel that published it, as `host:port`. */
  readonly sentinel: string;
  /** The channel, e.g. `+switch-master`. */
  readonly channel: string;
  /** The raw payload. */
  readonly payload: string;
}

/** Options for {@link SentinelWatcher}. */
export interface SentinelWatcherOptions {
  /** Current sentinel list (seeds plus discovered), read on every refill. */
  sentinels: () => readonly Endpoint[];
  /** Master name to filter events by. */
  masterName: string;
  /** Sentinel ACL user. */
  username?: string | undefined;
  /** Sentinel password. */
  password?: Secret | undefined;
  /** TLS to sentinels. @default {false} */
  tls?: boolean | undefined;
  /** Extra CA certificates (PEM) trusted for TLS. */
  caCerts?: readonly string[] | undefined;
  /**
   * How many sentinels to subscribe to. Only the failover's leader announces
   * `+switch-master` at once (the others follow after their next hello, up
   * to a second or two later), so the default listens to every sentinel of a
   * normal deployment. @default {5}
   */
  subscriptions?: number | undefined;
  /** How often to replace lost subscriptions. @default {1000} */
  refillIntervalMs?: number | undefined;
  /** Connect deadline per sentinel. @default {500} */
  connectTimeoutMs?: number | undefined;
  /** Channels beyond {@link SENTINEL_CHANNELS}. @default {[]} */
  extraChannels?: readonly string[] | undefined;
  /** Called for every event about the master. */
  onEvent: (event: SentinelEvent) => void;
  /** Told of every connection opened to a sentinel and every command sent (for metrics). */
  observer?: SentinelObserver | undefined;
}

/** Keeps pub/sub subscriptions open on up to N sentinels. Dispose it to stop. */
export class SentinelWatcher implements AsyncDisposable {
  readonly #options: SentinelWatcherOptions;
  readonly #connections = new Map<string, RedisConnection>();
  #generation = 0;
  readonly #stop = new AbortController();
  readonly #loop: Promise<void>;
  #filled = Promise.withResolvers<void>();

  /** Starts watching in the background. */
  constructor(options: SentinelWatcherOptions) {
    this.#options = options;
    this.#loop = this.#run();
  }

  /**
   * Bumped whenever a subscription is lost: events published while it was
   * down were missed, so what was learned before may be out of date.
   */
  get generation(): number {
    for (const [name, conn] of this.#connections) {
      if (conn.closed) {
        this.#connections.delete(name);
        this.#generation++;
      }
    }
    return this.#generation;
  }

  /** Sentinels currently subscribed to, as `host:port`. */
  get subscribed(): string[] {
    return [...this.#connections.keys()];
  }

  /** Resolves after the first attempt to subscribe finished (successful or not). */
  ready(): Promise<void> {
    return this.#filled.promise;
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      await this.#refill();
      this.#filled.resolve();
      try {
        await delay(this.#options.refillIntervalMs ?? 1000, this.#stop.signal);
      } catch {
        return;
      }
    }
  }

  async #refill(): Promise<void> {
    const want = this.#options.subscriptions ?? 5;
    for (const [name, conn] of this.#connections) {
      if (conn.closed) {
        this.#connections.delete(name);
        this.#generation++;
      }
    }
    for (const sentinel of this.#options.sentinels()) {
      if (this.#connections.size >= want || this.#stop.signal.aborted) return;
      const name = formatEndpoint(sentinel);
      if (this.#connections.has(name)) continue;
      let conn: RedisConnection | undefined;
      try {
        this.#options.observer?.connected();
        conn = await RedisConnection.connect(sentinel, {
          tls: this.#options.tls,
          caCerts: this.#options.caCerts,
          username: this.#options.username,
          password: this.#options.password,
          connectTimeoutMs: this.#options.connectTimeoutMs ?? 500,
          signal: this.#stop.signal,
          credentialVariables: "MN_REDIS_SENTINEL_USERNAME/MN_REDIS_SENTINEL_PASSWORD",
          tlsVariable: "MN_REDIS_SENTINEL_TLS",
        });
        // A sentinel that accepts and never confirms the subscription is skipped after the deadline.
        const channels = [...SENTINEL_CHANNELS, ...(this.#options.extraChannels ?? [])];
        this.#options.observer?.sent(channels.length);
        await conn.subscribe(
          channels,
          (channel, payload) => this.#deliver(name, channel, payload),
          { timeoutMs: this.#options.connectTimeoutMs ?? 500, signal: this.#stop.signal },
        );
        if (this.#stop.signal.aborted) {
          await conn.close();
          return;
        }
        this.#connections.set(name, conn);
      } catch {
        await conn?.close();
        // Unreachable now; the next refill tries again.
      }
    }
  }

  #deliver(sentinel: string, channel: string, payload: string): void {
    const master = channel === "+switch-master"
      ? parseSwitchMaster(payload)?.masterName
      : eventMasterName(payload);
    if (master !== this.#options.masterName) return;
    this.#options.onEvent({ sentinel, channel, payload });
  }

  /** Stops watching and closes every subscription. Idempotent. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    await Promise.all([...this.#connections.values()].map((c) => c.close()));
    this.#connections.clear();
  }

  /** Same as {@link SentinelWatcher.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
