/**
 * The HA client: one authoritative write path to the confirmed primary, in
 * single or sentinel mode, with reconnect, an active probe, Sentinel event
 * hints and group-committed `WAIT` for durable writes.
 *
 * @module
 */

import { delay } from "./_delay.ts";
import { backoffDelayMs } from "./backoff.ts";
import type { Config } from "./config.ts";
import { type ConnectOptions, RedisConnection } from "./connection.ts";
import { type Endpoint, formatEndpoint } from "./endpoint.ts";
import { AuthError, OutcomeUnknownError, ReplyError, RetriesExhaustedError } from "./errors.ts";
import { openSession, type PrimaryInfo, type Session } from "./_session.ts";
import { HaEvents } from "./events.ts";
import { libraryLogger } from "./log.ts";
import { classifyFailure, isAuthReply } from "./reconnect.ts";
import type { MasterDecision } from "./resolver_decision.ts";
import { replyToString, type RespArg, type RespReply } from "./resp.ts";
import type { Script } from "./script.ts";
import { SentinelResolver } from "./sentinel_resolver.ts";
import { type SentinelEvent, SentinelWatcher } from "./sentinel_watcher.ts";

export type { PrimaryInfo } from "./_session.ts";

const logger = libraryLogger("client");

/** Options for {@link RedisHaClient.connect}. */
export interface ClientOptions {
  /** `CLIENT SETNAME` on every connection. @default {"mn-redis-ha"} */
  clientName?: string;
  /** How often the active probe checks the primary. @default {1000} */
  probeIntervalMs?: number;
  /** How long the probe waits for `ROLE`. @default {1000} */
  probeTimeoutMs?: number;
  /** Connect plus handshake deadline per node. @default {2000} */
  connectTimeoutMs?: number;
  /** Per-sentinel query deadline. @default {500} */
  sentinelTimeoutMs?: number;
  /** Random source for backoff jitter. @default {Math.random} */
  random?: () => number;
  /**
   * Extra CA certificates (PEM) trusted for TLS to data nodes and sentinels,
   * e.g. a private Redis CA. The CLI and binary can use `DENO_CERT` instead.
   */
  tlsCaCerts?: readonly string[];
}

/** Options for one command. */
export interface CommandOptions {
  /**
   * The command may be resent when its outcome is unknown (it was written
   * but the connection failed before the reply). @default {false}
   */
  idempotent?: boolean;
  /** Aborts retries (a command already written still runs on the server). */
  signal?: AbortSignal;
}

/**
 * A Redis client that always writes to the authoritative primary.
 *
 * @example
 * ```ts
 * import { parseConfig, RedisHaClient } from "@mirror-neuron/redis-ha";
 * const config = parseConfig((name) => Deno.env.get(name));
 * await using client = await RedisHaClient.connect(config);
 * await client.durable(["SET", `${config.namespace}:hello`, "world"], { idempotent: true });
 * console.log(await client.command(["GET", `${config.namespace}:hello`]));
 * ```
 */
export class RedisHaClient implements AsyncDisposable {
  /** The configuration in force. */
  readonly config: Config;
  /** Typed events: failover, reconnecting, reconnected, stale-sentinel, probe-failed. */
  readonly events: HaEvents = new HaEvents();
  readonly #options: ClientOptions;
  readonly #resolver: SentinelResolver | undefined;
  readonly #watcher: SentinelWatcher | undefined;
  readonly #closing = new AbortController();
  readonly #background = new Set<Promise<unknown>>();
  #session: Session | undefined;
  #establishing: Promise<Session> | undefined;
  #lastPrimary: PrimaryInfo | undefined;
  #lastDecision: MasterDecision | undefined;
  #hint = new AbortController();
  #probe: Promise<void> | undefined;

  private constructor(config: Config, options: ClientOptions) {
    this.config = config;
    this.#options = options;
    if (config.haMode === "sentinel") {
      const common = {
        masterName: config.sentinelMaster!,
        username: config.sentinelUsername,
        password: config.sentinelPassword,
        tls: config.sentinelTls,
        caCerts: options.tlsCaCerts,
      };
      const resolver = new SentinelResolver({
        ...common,
        sentinels: config.sentinels,
        perSentinelTimeoutMs: options.sentinelTimeoutMs ?? 500,
      });
      this.#resolver = resolver;
      this.#watcher = new SentinelWatcher({
        ...common,
        sentinels: () => resolver.sentinels,
        connectTimeoutMs: options.sentinelTimeoutMs ?? 500,
        onEvent: (event) => this.#onSentinelEvent(event),
      });
    }
  }

  /**
   * Creates a client and connects to the confirmed primary, retrying
   * reconnectable failures per the configuration.
   */
  static async connect(config: Config, options: ClientOptions = {}): Promise<RedisHaClient> {
    const client = new RedisHaClient(config, options);
    try {
      await client.#withRetry(() => Promise.resolve(undefined), { idempotent: true });
    } catch (error) {
      await client.close();
      throw error;
    }
    client.#probe = client.#probeLoop();
    return client;
  }

  /** The confirmed primary of the current connection, if connected. */
  get primary(): PrimaryInfo | undefined {
    return this.#session?.primary ?? this.#lastPrimary;
  }

  /** The last Sentinel decision (sentinel mode), with every sentinel's answer. */
  get lastDecision(): MasterDecision | undefined {
    return this.#lastDecision;
  }

  /** Sentinels the client knows: the seeds plus those discovered. */
  get sentinels(): Endpoint[] {
    return this.#resolver?.sentinels ?? [];
  }

  /**
   * Runs a command on the primary: reads and hot writes (e.g. lease
   * renewals). Never waits for replicas and never queues behind a durable
   * write's `WAIT`.
   */
  command(args: readonly RespArg[], options: CommandOptions = {}): Promise<RespReply> {
    return this.#withRetry((s) => s.hot.send(args), {
      idempotent: options.idempotent ?? false,
      signal: options.signal,
    });
  }

  /**
   * Runs a durable write. With `MN_REDIS_WAIT_REPLICAS` > 0 it returns only
   * after `WAIT` confirmed that many replicas; fewer gives {@link WaitError}.
   * Concurrent durable writes share one `WAIT` (group commit).
   */
  durable(args: readonly RespArg[], options: CommandOptions = {}): Promise<RespReply> {
    return this.#withRetry((s) => this.#durableOn(s, s.durable.send(args)), {
      idempotent: options.idempotent ?? false,
      signal: options.signal,
    });
  }

  /**
   * Runs a Lua script on the primary (`EVALSHA`, falling back to `EVAL`).
   * With `durable: true` it is a durable write (WAIT per config); otherwise
   * it runs on the hot connection like {@link RedisHaClient.command}.
   * `args` may be a function of the confirmed primary it is about to run on
   * (e.g. to pass its Sentinel config-epoch); it is called on every attempt.
   */
  runScript(
    script: Script,
    keys: readonly string[],
    args: readonly RespArg[] | ((primary: PrimaryInfo) => readonly RespArg[]),
    options: CommandOptions & { durable?: boolean } = {},
  ): Promise<RespReply> {
    const retry = { idempotent: options.idempotent ?? false, signal: options.signal };
    const argsFor = (s: Session): readonly RespArg[] =>
      typeof args === "function" ? args(s.primary) : args;
    if (options.durable === true) {
      return this.#withRetry(
        (s) => this.#durableOn(s, script.run((a) => s.durable.send(a), keys, argsFor(s))),
        retry,
      );
    }
    return this.#withRetry((s) => script.run((a) => s.hot.send(a), keys, argsFor(s)), retry);
  }

  /**
   * Opens a dedicated connection to the confirmed primary, for blocking
   * commands (e.g. `XREAD BLOCK`) that must not hold up the shared
   * connections. The caller closes it; it does not follow failovers, so open
   * a new one after it fails.
   */
  openConnection(options: { signal?: AbortSignal } = {}): Promise<RedisConnection> {
    return this.#withRetry(
      (s) => RedisConnection.connect(s.primary.endpoint, this.#connectOptions()),
      { idempotent: true, signal: options.signal },
    );
  }

  #connectOptions(): ConnectOptions {
    return {
      tls: this.config.tls,
      caCerts: this.#options.tlsCaCerts,
      username: this.config.username,
      password: this.config.password,
      db: this.config.db,
      connectTimeoutMs: this.#options.connectTimeoutMs ?? 2000,
      clientName: this.#options.clientName ?? "mn-redis-ha",
      signal: this.#closing.signal,
    };
  }

  #durableOn(session: Session, reply: Promise<RespReply>): Promise<RespReply> {
    return session.wait === undefined ? reply : session.wait.confirm(reply);
  }

  async #withRetry<T>(
    op: (session: Session) => Promise<T>,
    options: { idempotent: boolean; signal?: AbortSignal },
  ): Promise<T> {
    const started = performance.now();
    for (let attempt = 1;; attempt++) {
      options.signal?.throwIfAborted();
      this.#closing.signal.throwIfAborted();
      let session: Session | undefined;
      try {
        session = await this.#getSession();
        const result = await op(session);
        if (attempt > 1) {
          this.events.emit("reconnected", { primary: session.primary.address, attempts: attempt });
          logger.info("Redis command succeeded on {primary} after {attempts} attempts", {
            primary: session.primary.address,
            attempts: attempt,
          });
        }
        return result;
      } catch (error) {
        if (isAuthReply(error)) {
          const where = session?.primary.address ?? formatEndpoint(this.config.url);
          throw new AuthError(
            `Authentication to ${where} failed (${error.prefix}); check MN_REDIS_USERNAME and MN_REDIS_PASSWORD`,
            { endpoint: where, cause: error },
          );
        }
        const action = classifyFailure(error, { idempotent: options.idempotent });
        if (action === "fatal") throw error;
        const where = session?.primary.address ?? this.#lastPrimary?.address ??
          (this.#resolver === undefined ? formatEndpoint(this.config.url) : undefined);
        if (action === "outcome-unknown") {
          if (session !== undefined) this.#retire(session, true);
          throw new OutcomeUnknownError(where ?? "the primary", error);
        }
        // Rejected commands (READONLY, …) let the old connections drain; broken ones are gone anyway.
        if (session !== undefined) this.#retire(session, false);
        if (attempt >= this.config.reconnectAttempts) {
          throw new RetriesExhaustedError({
            attempts: attempt,
            lastPrimary: where,
            elapsedMs: performance.now() - started,
            cause: error,
          });
        }
        const delayMs = backoffDelayMs(attempt, {
          backoffMs: this.config.reconnectBackoffMs,
          maxBackoffMs: this.config.reconnectMaxBackoffMs,
          random: this.#options.random,
        });
        const message = error instanceof Error ? error.message : String(error);
        this.events.emit("reconnecting", { attempt, delayMs, error: message, primary: where });
        logger.warn(
          "Redis reconnecting (attempt {attempt} of {attempts}, retry in {delayMs}ms, last primary {primary}): {error}",
          {
            attempt,
            attempts: this.config.reconnectAttempts,
            delayMs,
            primary: where ?? null,
            error: message,
          },
        );
        await this.#sleepUnlessFailover(delayMs, options.signal);
      }
    }
  }

  /** Sleeps, but wakes early when Sentinel announces a failover. */
  async #sleepUnlessFailover(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const hint = this.#hint.signal;
    const signals = [hint, this.#closing.signal];
    if (signal !== undefined) signals.push(signal);
    try {
      await delay(ms, AbortSignal.any(signals));
    } catch (error) {
      signal?.throwIfAborted();
      this.#closing.signal.throwIfAborted();
      if (!hint.aborted) throw error;
    }
  }

  #getSession(): Promise<Session> {
    const current = this.#session;
    if (current !== undefined && !current.retired) return Promise.resolve(current);
    this.#establishing ??= this.#establish().finally(() => {
      this.#establishing = undefined;
    });
    return this.#establishing;
  }

  async #establish(): Promise<Session> {
    let endpoint: Endpoint;
    let configEpoch: number | undefined;
    if (this.#resolver !== undefined) {
      const decision = await this.#resolver.resolve();
      this.#lastDecision = decision;
      endpoint = decision.primary;
      configEpoch = decision.configEpoch;
      for (const stale of decision.stale) {
        const detail = {
          ...stale,
          chosen: formatEndpoint(decision.primary),
          chosenEpoch: decision.configEpoch,
        };
        this.events.emit("stale-sentinel", detail);
        logger.warn(
          "Sentinel {sentinel} reports {reported} (epoch {configEpoch}); using {chosen} (epoch {chosenEpoch})",
          detail,
        );
      }
    } else {
      endpoint = this.config.url;
    }
    const session = await openSession(endpoint, {
      connect: this.#connectOptions(),
      requireMaster: this.config.haMode === "sentinel",
      configEpoch,
      wait: { replicas: this.config.waitReplicas, timeoutMs: this.config.waitTimeoutMs },
    });
    session.hot.onClose(() => this.#retire(session, true));
    session.durable.onClose(() => this.#retire(session, true));
    const previous = this.#lastPrimary;
    const address = session.primary.address;
    this.#session = session;
    this.#lastPrimary = session.primary;
    if (previous !== undefined && previous.address !== address) {
      const detail = { from: previous.address, to: address, configEpoch };
      this.events.emit("failover", detail);
      logger.warn("Redis primary changed from {from} to {to} (config-epoch {configEpoch})", {
        ...detail,
        configEpoch: configEpoch ?? null,
      });
    }
    return session;
  }

  /**
   * Takes a session out of service. `force` closes it now (in-flight
   * commands fail); otherwise its connections close once their in-flight
   * replies arrived, so commands the node rejected are not turned into
   * "outcome unknown".
   */
  #retire(session: Session, force: boolean): void {
    if (this.#session === session) this.#session = undefined;
    const first = !session.retired;
    session.retired = true;
    if (force) {
      this.#track(Promise.all([session.hot.close(), session.durable.close()]));
    } else if (first) {
      const graceMs = this.#options.probeTimeoutMs ?? 1000;
      this.#track((async () => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
        await Promise.race([
          Promise.all([session.hot.whenIdle(), session.durable.whenIdle()]),
          grace,
        ]);
        clearTimeout(timer);
        await Promise.all([session.hot.close(), session.durable.close()]);
      })());
    }
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => {});
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }

  #onSentinelEvent(event: SentinelEvent): void {
    this.events.emit("sentinel-event", event);
    logger.info("Sentinel {sentinel} published {channel} {payload}", { ...event });
    if (event.channel === "+switch-master" || event.channel === "+convert-to-slave") {
      // The primary may have moved: stop using the current session and wake sleepers.
      const current = this.#session;
      if (current !== undefined) this.#retire(current, false);
    }
    if (event.channel !== "+sentinel") {
      const hint = this.#hint;
      this.#hint = new AbortController();
      hint.abort();
    }
  }

  async #probeLoop(): Promise<void> {
    const intervalMs = this.#options.probeIntervalMs ?? 1000;
    const timeoutMs = this.#options.probeTimeoutMs ?? 1000;
    while (!this.#closing.signal.aborted) {
      try {
        await delay(intervalMs, this.#closing.signal);
      } catch {
        return;
      }
      const session = this.#session;
      if (session === undefined || session.retired) continue;
      try {
        const reply = await session.hot.send(["ROLE"], { timeoutMs });
        const role = Array.isArray(reply) ? replyToString(reply[0]) : null;
        if (this.config.haMode === "sentinel" && role !== "master") {
          this.#probeFailed(session, `ROLE reports ${role}`, false);
        }
      } catch (error) {
        if (this.#closing.signal.aborted) return;
        if (error instanceof ReplyError && isAuthReply(error)) continue;
        this.#probeFailed(session, error instanceof Error ? error.message : String(error), true);
      }
    }
  }

  #probeFailed(session: Session, error: string, force: boolean): void {
    if (session.retired) return;
    const detail = { primary: session.primary.address, error };
    this.events.emit("probe-failed", detail);
    logger.warn("Redis primary {primary} failed its probe: {error}", detail);
    this.#retire(session, force);
    const hint = this.#hint;
    this.#hint = new AbortController();
    hint.abort();
  }

  /** Stops the probe and the Sentinel watcher and closes every connection. Idempotent. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#probe;
    await this.#establishing?.catch(() => {});
    if (this.#session !== undefined) this.#retire(this.#session, true);
    await this.#watcher?.close();
    await this.#resolver?.close();
    while (this.#background.size > 0) await Promise.all([...this.#background]);
  }

  /** Same as {@link RedisHaClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
