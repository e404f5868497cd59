/**
 * The client's link to the authoritative primary: the session in service,
 * put there by the one reconnect loop (`reconnect_loop.ts`), watched by the
 * probe and Sentinel's hints (`primary_checks.ts`), and the silence guard
 * for its durable writes. `RedisHaClient` is a thin front on it.
 *
 * Reconnecting is shared: commands that meet a broken or replaced primary
 * wait for one reconnect loop (at most one warning per outage, one line
 * per failover), which backs off, re-resolves and confirms the new primary with
 * `ROLE`. A primary that goes silent for half of Sentinel's
 * `down-after-milliseconds` (paused, frozen) may come back after Sentinel
 * replaced it, still saying `ROLE master` with replicas that still follow it:
 * durable writes it then acknowledges are confirmed with the sentinels
 * before they count (see `silence_guard.ts`). Every wait is bounded:
 * connects and handshakes by `connectTimeoutMs`, sentinel queries by
 * `sentinelTimeoutMs`, a hung primary by the probe, the reconnect loop by
 * `MN_REDIS_RECONNECT_ATTEMPTS`, and `close()` by one second.
 *
 * @module
 */

import { abortable } from "../common/abortable.ts";
import { type Clock, SYSTEM_CLOCK } from "../common/clock.ts";
import type { Config } from "./config.ts";
import type { ConnectOptions } from "../protocol/connection.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import {
  AbortedError,
  ConnectionError,
  RetriesExhaustedError,
  WaitError,
} from "../common/errors.ts";
import type { PrimaryInfo, Session } from "./_session.ts";
import type { HaEventEmitter } from "./events.ts";
import type { ClientMetrics, FailoverSource } from "./client_metrics.ts";
import type { ClientOptions, ClientParts } from "./client_options.ts";
import { libraryLogger } from "../common/log.ts";
import { errorCategory } from "./failures.ts";
import type { MasterDecision } from "./resolver_decision.ts";
import type { RespArg, RespReply } from "../protocol/resp.ts";
import { SentinelResolver } from "./sentinel_resolver.ts";
import { SilenceGuard } from "./silence_guard.ts";
import { REPLICA_CHANNELS, SentinelWatcher } from "./sentinel_watcher.ts";
import { type CheckedLink, PrimaryChecks } from "./primary_checks.ts";
import { ReconnectLoop } from "./reconnect_loop.ts";
import { ReplicaSet } from "./replica_set.ts";

const logger = libraryLogger("client");

/** The session in service and everything that keeps one in service. */
export class PrimaryLink implements AsyncDisposable {
  readonly #config: Config;
  readonly #options: ClientOptions;
  readonly #metrics: ClientMetrics;
  readonly #emitter: HaEventEmitter;
  readonly #clock: Clock;
  readonly #resolver: SentinelResolver | undefined;
  readonly #watcher: SentinelWatcher | undefined;
  /** Sentinel mode: the replicas reads may go to (listed on the first replica read). */
  readonly #replicas: ReplicaSet | undefined;
  /** Sentinel mode: confirms durable writes acknowledged by a primary that had gone silent. */
  readonly #silence: SilenceGuard | undefined;
  readonly #closing = new AbortController();
  readonly #background = new Set<Promise<unknown>>();
  readonly #checks: PrimaryChecks;
  readonly #loop: ReconnectLoop;
  #session: Session | undefined;
  #establishing: Promise<Session> | undefined;
  #lastPrimary: PrimaryInfo | undefined;
  #probe: Promise<void> | undefined;
  /** What retired the last session, for the next failover's `source` label. */
  #retiredBy: FailoverSource = "connection";
  /** Commands that failed on a lost session and were retried, since the last reconnect. */
  #retried = 0;

  /** Sets the link up; nothing connects until {@link PrimaryLink.open}. */
  constructor(parts: ClientParts) {
    const { config, options } = parts;
    this.#config = config;
    this.#options = options;
    this.#metrics = parts.metrics;
    this.#emitter = parts.emitter;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    if (config.haMode === "sentinel") {
      const observer = {
        connected: () => this.#metrics.sentinelConnection(),
        sent: (count: number) => this.#metrics.sentinelCommands(count),
      };
      const common = {
        observer,
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
      this.#silence = new SilenceGuard(
        async () =>
          (await resolver.resolve({ waitAll: true, signal: this.#closing.signal })).answers,
        this.#clock,
      );
      this.#watcher = new SentinelWatcher({
        ...common,
        sentinels: () => resolver.sentinels,
        connectTimeoutMs: options.sentinelTimeoutMs ?? 500,
        // Replica topology events only for a client whose policy reads replicas (a per-call
        // override still works: the list is refreshed on failures and every 30 s).
        extraChannels: config.readFrom === "primary" ? [] : REPLICA_CHANNELS,
        onEvent: (event) => {
          this.#checks.onSentinelEvent(event);
          this.#replicas?.onSentinelEvent(event);
        },
      });
      const replicaTimeoutMs = options.replicaTimeoutMs ?? 250;
      this.#replicas = new ReplicaSet({
        list: (signal) => resolver.replicas({ signal }),
        primary: () => this.#session?.primary.address ?? this.#lastPrimary?.address,
        // A replica that accepts and never answers (paused) is given up on soon: the primary can serve.
        connectOptions: () => ({
          ...this.connectOptions(),
          connectTimeoutMs: 2 * replicaTimeoutMs,
        }),
        clock: this.#clock,
        closing: this.#closing.signal,
      });
    }
    this.#loop = new ReconnectLoop({
      watching: () => this.#watching(),
      lastPrimary: () => this.#lastPrimary,
      retiredBy: () => this.#retiredBy,
      connectOptions: () => this.connectOptions(),
    }, {
      config,
      options,
      metrics: this.#metrics,
      emitter: this.#emitter,
      clock: this.#clock,
      resolver: this.#resolver,
      silence: this.#silence,
      closing: this.#closing.signal,
    });
    const link: CheckedLink = {
      current: () => this.#session,
      closing: this.#closing.signal,
      replaced: (session, why, source) => this.#retireReplaced(session, why, source),
      failed: (session, error) => this.sessionFailed(session, error),
      wake: () => this.#loop.wake(),
      doubted: (address, why) => this.#silence?.doubted(address, why),
      switched: (target, sentinel) => this.#loop.switched(target, sentinel),
      switchTarget: () => this.#loop.switchTarget,
      peersChanged: () => this.#resolver?.refreshPeers(),
      watching: () => this.#watching(),
    };
    this.#checks = new PrimaryChecks(link, {
      haMode: config.haMode,
      resolver: this.#resolver,
      emitter: this.#emitter,
      clock: this.#clock,
      intervalMs: options.probeIntervalMs ?? 1000,
      timeoutMs: options.probeTimeoutMs ?? 1000,
      silenceThresholdMs: () => this.#silence?.thresholdMs,
    });
  }

  /**
   * The watcher's generation while it is subscribed to a majority of the
   * known sentinels; undefined otherwise (see {@link ReconnectLoop}).
   */
  #watching(): number | undefined {
    if (this.#watcher === undefined || this.#resolver === undefined) return undefined;
    const generation = this.#watcher.generation;
    const majority = Math.floor(this.#resolver.sentinels.length / 2) + 1;
    return this.#watcher.subscribed.length >= majority ? generation : undefined;
  }

  /**
   * Re-checks that `session` still talks to the primary; retires it when
   * not. Returns whether it was retired (see {@link PrimaryChecks.reverify}).
   */
  reverify(session: Session): Promise<boolean> {
    return this.#checks.reverify(session);
  }

  /**
   * The first connect: a session within `budgetMs` (retries included), then
   * the probe starts. Past the budget it rejects with
   * {@link RetriesExhaustedError} naming `firstConnectTimeoutMs`.
   */
  async open(signal: AbortSignal | undefined, budgetMs: number): Promise<void> {
    const started = this.#clock.now();
    const deadline = AbortSignal.timeout(budgetMs);
    try {
      await this.session(
        AbortSignal.any([
          deadline,
          this.#closing.signal,
          ...(signal === undefined ? [] : [signal]),
        ]),
      );
    } catch (error) {
      if (deadline.aborted && !(signal?.aborted ?? false)) {
        const attempted = this.#loop.attempted;
        throw new RetriesExhaustedError({
          attempts: attempted.count,
          lastPrimary: this.#loop.addressForErrors(),
          elapsedMs: this.#clock.now() - started,
          cause: attempted.lastError ?? error,
          limit: `ClientOptions.firstConnectTimeoutMs (${budgetMs}ms)`,
        });
      }
      throw error;
    }
    this.#probe = this.#checks.probe();
  }

  /** Aborted once the link is closing. */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** The confirmed primary of the session in service, or the last one. */
  get primary(): PrimaryInfo | undefined {
    return this.#session?.primary ?? this.#lastPrimary;
  }

  /** The last primary a session was confirmed with. */
  get lastPrimary(): PrimaryInfo | undefined {
    return this.#lastPrimary;
  }

  /** The session in service, if one is (no reconnect needed). */
  get current(): Session | undefined {
    const session = this.#session;
    return session !== undefined && !session.retired ? session : undefined;
  }

  /** Whether a session is in service (no reconnect needed). */
  get inService(): boolean {
    return this.#session !== undefined && !this.#session.retired;
  }

  /** The last Sentinel decision (sentinel mode), with every sentinel's answer. */
  get lastDecision(): MasterDecision | undefined {
    return this.#loop.lastDecision;
  }

  /** Sentinels the link knows: the seeds plus those discovered. */
  get sentinels(): Endpoint[] {
    return this.#resolver?.sentinels ?? [];
  }

  /** The replicas reads may go to (sentinel mode), or undefined. */
  get replicas(): ReplicaSet | undefined {
    return this.#replicas;
  }

  /** A command succeeded: the consecutive failures start over. */
  succeeded(): void {
    this.#loop.succeeded();
  }

  /** A command failed on a lost session and is retried (counted for the reconnect's log line). */
  retrying(): void {
    this.#retried++;
  }

  /** The connection settings of every connection to a data node. */
  connectOptions(): ConnectOptions {
    return {
      tls: this.#config.tls,
      caCerts: this.#options.tlsCaCerts,
      username: this.#config.username,
      password: this.#config.password,
      db: this.#config.db,
      connectTimeoutMs: this.#options.connectTimeoutMs ?? 2000,
      clientName: this.#options.clientName ?? "mn-redis-ha",
      signal: this.#closing.signal,
    };
  }

  /** The confirmed session, or the shared reconnect loop's next one; `signal` gives up waiting. */
  session(signal: AbortSignal): Promise<Session> {
    const current = this.#session;
    if (current !== undefined && !current.retired) return Promise.resolve(current);
    if (this.#establishing === undefined) {
      const establishing = this.#loop.run().then(({ session, attempts }) => {
        this.#install(session, attempts);
        return session;
      }).finally(() => {
        if (this.#establishing === establishing) this.#establishing = undefined;
      });
      this.#establishing = establishing;
    }
    return abortable(this.#establishing, signal).catch((error) => {
      if (signal.aborted && error === signal.reason) {
        throw new AbortedError({
          mayHaveApplied: false,
          reason: this.#closing.signal.aborted ? new Error("client closed") : signal.reason,
          what: "Redis command waiting for the primary",
        });
      }
      throw error;
    });
  }

  /**
   * `session`'s node refused a write because it cannot persist: its later
   * acknowledgements wait for the sentinels' word (see
   * {@link SilenceGuard.refused}).
   */
  refused(session: Session): void {
    this.#silence?.refused(session.primary.address);
  }

  /** One durable write on `session`: with its WAIT when WAIT is on. */
  durableOn(
    session: Session,
    args: readonly RespArg[],
    signal: AbortSignal | undefined,
    strings: boolean,
  ): Promise<RespReply> {
    if (session.wait === undefined) return session.durable.send(args, { signal, strings });
    const written = session.wait.write(args, signal, strings);
    const guard = this.#silence;
    if (guard === undefined) return written;
    return written.then((reply) =>
      guard.suspect(session.primary.address) ? this.#confirmAfterSilence(session, reply) : reply
    );
  }

  /**
   * A durable write was acknowledged (WAIT included) by a primary that had
   * gone silent: confirms with the sentinels that it was not failed over
   * meanwhile. When it may have been, the write is not confirmed
   * ({@link WaitError} with `failover`) and the session is retired, so the
   * next attempt re-resolves the primary.
   */
  async #confirmAfterSilence(session: Session, reply: RespReply): Promise<RespReply> {
    const evidence = await this.#silence!.confirm(
      session.primary.address,
      session.primary.configEpoch ?? 0,
      this.#clock.now(),
    );
    if (evidence === undefined) return reply;
    this.#retireReplaced(session, evidence, "probe");
    throw new WaitError({
      acked: this.#config.waitReplicas,
      required: this.#config.waitReplicas,
      timeoutMs: this.#config.waitTimeoutMs,
      failover: evidence,
    });
  }

  /** Puts a confirmed session in service and reports the reconnect or failover once. */
  #install(session: Session, attempts: number): void {
    session.hot.onClose((error) => this.sessionFailed(session, error));
    session.durable.onClose((error) => this.sessionFailed(session, error));
    const previous = this.#lastPrimary;
    const address = session.primary.address;
    const configEpoch = session.primary.configEpoch;
    this.#session = session;
    this.#lastPrimary = session.primary;
    const retried = this.#retried;
    this.#retried = 0;
    this.#metrics.primary(address, session.primary.replid, configEpoch);
    if (previous !== undefined && previous.address !== address) {
      const detail = { from: previous.address, to: address, configEpoch };
      this.#metrics.failover(this.#retiredBy, { ...detail, replid: session.primary.replid });
      this.#emitter.emit("failover", detail);
      logger.warn(
        "Redis primary changed from {from} to {to} (config-epoch {configEpoch}); {retried} commands retried",
        { ...detail, configEpoch: configEpoch ?? null, retried },
      );
    }
    this.#metrics.sessionInstalled(address);
    if (previous !== undefined) {
      this.#emitter.emit("reconnected", { primary: address, attempts, retried });
      if (previous.address === address) {
        logger.info(
          "Redis reconnected to {primary} after {attempts} failed attempts; {retried} commands retried",
          { primary: address, attempts, retried },
        );
      }
    }
  }

  /**
   * A session failed under a command (or its socket closed): takes it out
   * of service once, counts the failure and logs one warning. Connections
   * that broke are closed now; a node that refused (READONLY, …) keeps its
   * sockets until in-flight replies arrived.
   */
  sessionFailed(session: Session, error: unknown): void {
    if (session.retired) return;
    this.#retire(session, error instanceof ConnectionError);
    if (this.#closing.signal.aborted) return;
    const reason = errorCategory(error);
    this.#retiredBy = reason === "readonly" ? "role_mismatch" : "connection";
    // The node answered as a replica: what the sentinels named last is out of date.
    if (reason === "readonly") this.#loop.forget();
    this.#metrics.reconnect(reason, session.primary.address);
    const next = this.#loop.failed();
    const message = error instanceof Error ? error.message : String(error);
    this.#emitter.emit("reconnecting", {
      ...next,
      error: message,
      primary: session.primary.address,
    });
    // Info, not a warning: the one warning of a failover is the "primary changed" line.
    logger.info("Redis primary {primary} failed: {error}; reconnecting", {
      primary: session.primary.address,
      error: message,
    });
  }

  /** The session's node is no longer the primary: stop sending there, wake the reconnect loop. */
  #retireReplaced(session: Session, why: string, source: FailoverSource): void {
    if (session.retired) return;
    this.#retiredBy = source;
    this.#metrics.reconnect(source, session.primary.address);
    logger.info("Redis primary {primary} was replaced ({why}); switching", {
      primary: session.primary.address,
      why,
    });
    this.#retire(session, false);
    this.#loop.forget();
    this.#loop.wake();
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
    if (first && !this.#closing.signal.aborted) {
      this.#metrics.primaryLost(performance.now(), session.primary.address);
    }
    if (force) {
      this.#trackBackground(Promise.all([session.hot.close(), session.durable.close()]));
    } else if (first) {
      const graceMs = this.#options.probeTimeoutMs ?? 1000;
      this.#trackBackground((async () => {
        const grace = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(graceMs)]);
        await abortable(
          Promise.all([session.hot.whenIdle(), session.durable.whenIdle()]),
          grace,
        ).catch(() => {});
        await Promise.all([session.hot.close(), session.durable.close()]);
      })());
    }
  }

  /** Keeps `promise` until it settles, so `close()` can wait for it. */
  #trackBackground(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => {});
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }

  /**
   * Stops the probe and the Sentinel watcher and closes every connection.
   * Returns within about a second whatever the peers do. Idempotent.
   */
  async close(): Promise<void> {
    this.#closing.abort(new Error("client closed"));
    await this.#probe;
    await this.#establishing?.catch(() => {});
    if (this.#session !== undefined) this.#retire(this.#session, true);
    await Promise.all([this.#watcher?.close(), this.#replicas?.close()]);
    await this.#resolver?.close();
    while (this.#background.size > 0) await Promise.all([...this.#background]);
  }

  /** Same as {@link PrimaryLink.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
