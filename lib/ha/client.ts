/**
 * The HA client: one authoritative write path to the confirmed primary, in
 * single or sentinel mode, with reconnect, an active probe, Sentinel event
 * hints and group-committed `WAIT` for durable writes.
 *
 * Reconnecting is shared: commands that meet a broken or replaced primary
 * wait for one reconnect loop (one warning per attempt, one line per
 * failover), which backs off, re-resolves and confirms the new primary with
 * `ROLE`. A primary that goes silent for half of Sentinel's
 * `down-after-milliseconds` (paused, frozen) may come back after Sentinel
 * replaced it, still saying `ROLE master` with replicas that still follow it:
 * durable writes it then acknowledges are confirmed with the sentinels
 * before they count (see `silence_guard.ts`). Every wait is bounded:
 * connects and handshakes by `connectTimeoutMs`, sentinel queries by
 * `sentinelTimeoutMs`, a hung primary by the probe, the reconnect loop by
 * `MN_REDIS_RECONNECT_ATTEMPTS`, each operation by its `signal`/`timeoutMs`,
 * and `close()` by one second.
 *
 * @module
 */

import { abortable } from "../common/abortable.ts";
import { delay } from "../common/delay.ts";
import { backoffDelayMs } from "./backoff.ts";
import type { Config } from "./config.ts";
import { type ConnectOptions, RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import {
  AbortedError,
  AuthError,
  ConnectionError,
  NotPermittedError,
  NotPrimaryError,
  OutcomeUnknownError,
  ReplyError,
  RetriesExhaustedError,
  WaitError,
} from "../common/errors.ts";
import { openSession, type PrimaryInfo, type Session } from "./_session.ts";
import { HaEventEmitter } from "./events.ts";
import { ClientMetrics, type FailoverSource, type WriteOutcome } from "./client_metrics.ts";
import type { HaEvents } from "./events.ts";
import { libraryLogger } from "../common/log.ts";
import { classifyFailure, isAuthReply, RETRYABLE_REPLY_PREFIXES } from "./reconnect.ts";
import {
  eventInstanceAddress,
  type MasterDecision,
  parseSwitchMaster,
} from "./resolver_decision.ts";
import { replyToString, type RespArg, type RespReply } from "../protocol/resp.ts";
import type { Script } from "../protocol/script.ts";
import { SentinelResolver } from "./sentinel_resolver.ts";
import { SilenceGuard } from "./silence_guard.ts";
import { type SentinelEvent, SentinelWatcher } from "./sentinel_watcher.ts";

export type { PrimaryInfo } from "./_session.ts";

const logger = libraryLogger("client");

/** Options for {@link RedisHaClient.connect}. */
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
  /** Per-sentinel deadline for connect plus answer, and for a subscription. @default {500} */
  sentinelTimeoutMs?: number | undefined;
  /**
   * Default deadline of every operation (`command`, `durable`, `runScript`),
   * retries included; a call's own `timeoutMs` overrides it. On expiry the
   * call rejects with {@link AbortedError}. @default {undefined} (bounded by
   * the reconnect attempts and the probe only)
   */
  operationTimeoutMs?: number | undefined;
  /**
   * Deadline of {@link RedisHaClient.connect} as a whole: resolving the
   * primary, connecting and every retry. Long enough to ride out a Sentinel
   * failover in progress at start-up (join's `--down-after-ms` is 5000); when
   * it passes, `connect` rejects with {@link RetriesExhaustedError} naming
   * this option and the last error (with defaults and only a frozen
   * sentinel, after 10 s). Later reconnects are bounded by
   * `MN_REDIS_RECONNECT_ATTEMPTS` instead. @default {10000}
   */
  firstConnectTimeoutMs?: number | undefined;
  /** Aborts `connect` (it then rejects with {@link AbortedError}). */
  signal?: AbortSignal | undefined;
  /** Random source for backoff jitter. @default {Math.random} */
  random?: (() => number) | undefined;
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
   * {@link AbortedError}, whose `mayHaveApplied` says whether it had been
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

/** The operation name of a command, for metrics: its first word, upper case. */
function operationName(args: readonly RespArg[]): string {
  const first = args[0];
  return typeof first === "string" ? first.toUpperCase() : "COMMAND";
}

/** The `category` label of a failed attempt. */
function errorCategory(error: unknown): string {
  if (error instanceof ConnectionError) return "connection";
  if (error instanceof WaitError) return "wait";
  if (error instanceof AbortedError) return "aborted";
  if (error instanceof ReplyError) {
    if (error.prefix === "MNFENCED" || error.prefix === "MNFENCE") return "fenced";
    if (error.prefix.startsWith("MN")) return "state";
    return error.prefix.toLowerCase();
  }
  return "other";
}

/**
 * Whether a failed attempt says the primary could not serve it (connection
 * lost, not a primary, WAIT short, retries gone) rather than that the
 * command itself was refused (fencing, ACL, a wrong type) or the caller
 * gave up.
 */
function isUnavailability(error: unknown): boolean {
  if (error instanceof AbortedError) return false;
  if (error instanceof ReplyError) return RETRYABLE_REPLY_PREFIXES.has(error.prefix);
  return true;
}

/** What became of a durable write that threw `error`. */
function writeOutcome(error: unknown): WriteOutcome {
  if (error instanceof WaitError) {
    return error.failover === undefined ? "under_replicated" : "indeterminate";
  }
  if (error instanceof OutcomeUnknownError) return "indeterminate";
  if (error instanceof AbortedError) return error.mayHaveApplied ? "indeterminate" : "failed";
  return "failed";
}

/** A script's arguments, or a function of the confirmed primary it is about to run on. */
type ScriptArgs = readonly RespArg[] | ((primary: PrimaryInfo) => readonly RespArg[]);

/** {@link runScript}'s options: a durable script waits for replicas like {@link RedisHaClient.durable}. */
type ScriptOptions = CommandOptions & { durable?: boolean | undefined };

let runScriptOn: (
  client: RedisHaClient,
  script: Script,
  keys: readonly string[],
  args: ScriptArgs,
  options: ScriptOptions,
) => Promise<RespReply>;
let openConnectionOn: (
  client: RedisHaClient,
  options: { signal?: AbortSignal | undefined },
) => Promise<RedisConnection>;

/**
 * Runs a Lua script on the client's primary (`EVALSHA`, falling back to
 * `EVAL`). With `durable: true` it is a durable write (WAIT per config);
 * otherwise it runs on the hot connection like {@link RedisHaClient.command}.
 * `args` may be a function of the confirmed primary it is about to run on
 * (e.g. to pass its Sentinel config-epoch); it is called on every attempt.
 * Internal to the state layer: not exported from `mod.ts`.
 */
export function runScript(
  client: RedisHaClient,
  script: Script,
  keys: readonly string[],
  args: ScriptArgs,
  options: ScriptOptions = {},
): Promise<RespReply> {
  return runScriptOn(client, script, keys, args, options);
}

/**
 * Opens a dedicated connection to the client's confirmed primary, for
 * blocking commands (e.g. `XREAD BLOCK`) that must not hold up the shared
 * connections. The caller closes it; it does not follow failovers, so open a
 * new one after it fails. Internal: not exported from `mod.ts`.
 */
export function openConnection(
  client: RedisHaClient,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<RedisConnection> {
  return openConnectionOn(client, options);
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
  readonly events: HaEvents;
  readonly #emitter: HaEventEmitter = new HaEventEmitter();
  readonly #metrics: ClientMetrics = new ClientMetrics();
  /** What retired the last session, for the next failover's `source` label. */
  #retiredBy: FailoverSource = "connection";
  readonly #options: ClientOptions;
  readonly #resolver: SentinelResolver | undefined;
  readonly #watcher: SentinelWatcher | undefined;
  /** Sentinel mode: confirms durable writes acknowledged by a primary that had gone silent. */
  readonly #silence: SilenceGuard | undefined;
  readonly #closing = new AbortController();
  readonly #background = new Set<Promise<unknown>>();
  readonly #reverifying = new WeakMap<Session, Promise<boolean>>();
  #session: Session | undefined;
  #establishing: Promise<Session> | undefined;
  #lastPrimary: PrimaryInfo | undefined;
  #lastDecision: MasterDecision | undefined;
  #hint = new AbortController();
  #probe: Promise<void> | undefined;
  /** Consecutive failures (sessions lost, reconnect attempts failed) since a command last succeeded. */
  #failures = 0;
  /** Commands that failed on a lost session and were retried, since the last reconnect. */
  #retried = 0;
  /** The latest `+switch-master` target, and how many switches were seen. */
  #switchTarget: string | undefined;
  #switches = 0;
  /** The primary last found outside the network permission (reported once). */
  #unpermitted: string | undefined;
  /** Reconnect attempts that failed so far, and the last one's error (for `connect`'s deadline). */
  #attempted = 0;
  #lastAttemptError: unknown;

  private constructor(config: Config, options: ClientOptions) {
    this.config = config;
    const emitter = this.#emitter;
    // A frozen facade: a listener cannot reach the emitter to forge an event.
    this.events = Object.freeze({ on: emitter.on.bind(emitter) });
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
      this.#silence = new SilenceGuard(async () =>
        (await resolver.resolve({ waitAll: true, signal: this.#closing.signal })).answers
      );
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
   * reconnectable failures per the configuration. Permanent failures (wrong
   * credentials, a "sentinel" that is not one, TLS on one side only, an
   * unknown master name) fail at once; `options.signal` aborts it.
   */
  static async connect(config: Config, options: ClientOptions = {}): Promise<RedisHaClient> {
    const client = new RedisHaClient(config, options);
    const budgetMs = options.firstConnectTimeoutMs ?? 10_000;
    const started = performance.now();
    const deadline = AbortSignal.timeout(budgetMs);
    try {
      await client.#sessionFor(
        AbortSignal.any([
          deadline,
          client.#closing.signal,
          ...(options.signal === undefined ? [] : [options.signal]),
        ]),
      );
    } catch (error) {
      await client.close();
      if (deadline.aborted && !(options.signal?.aborted ?? false)) {
        throw new RetriesExhaustedError({
          attempts: client.#attempted,
          lastPrimary: client.#target(),
          elapsedMs: performance.now() - started,
          cause: client.#lastAttemptError ?? error,
          limit: `ClientOptions.firstConnectTimeoutMs (${budgetMs}ms)`,
        });
      }
      throw error;
    }
    client.#probe = client.#probeLoop();
    return client;
  }

  /** The confirmed primary of the current connection, if connected. */
  get primary(): PrimaryInfo | undefined {
    return this.#session?.primary ?? this.#lastPrimary;
  }

  /**
   * The last Sentinel decision (sentinel mode), with every sentinel's answer.
   * @internal For `status` and `inspect`.
   */
  get lastDecision(): MasterDecision | undefined {
    return this.#lastDecision;
  }

  /**
   * The client's own series (write outcomes, reconnects, errors, failovers,
   * failover unavailability, operation durations), as Prometheus text or
   * OpenMetrics; see the README's metric table.
   */
  renderMetrics(format: "prometheus" | "openmetrics" = "prometheus"): string {
    return this.#metrics.render(format);
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
    const strings = options.bytes !== true;
    return this.#withRetry(
      (s, signal) => s.hot.send(args, { signal, strings }),
      options,
      { name: operationName(args), durable: false },
    );
  }

  /**
   * Runs a durable write. With `MN_REDIS_WAIT_REPLICAS` > 0 it returns only
   * after `WAIT` confirmed that many replicas; fewer gives {@link WaitError}.
   * Concurrent durable writes share one `WAIT` (group commit). A
   * {@link WaitError} makes the client re-check the primary: an idempotent
   * write is then retried on a new primary, any other is reported.
   */
  durable(args: readonly RespArg[], options: CommandOptions = {}): Promise<RespReply> {
    return this.#withRetry(
      (s, signal) => this.#durableOn(s, args, signal, options.bytes !== true),
      options,
      { name: operationName(args), durable: true },
    );
  }

  static {
    runScriptOn = (client, script, keys, args, options) =>
      client.#runScript(script, keys, args, options);
    openConnectionOn = (client, options) => client.#openConnection(options);
  }

  #runScript(
    script: Script,
    keys: readonly string[],
    args: ScriptArgs,
    options: ScriptOptions,
  ): Promise<RespReply> {
    const argsFor = (s: Session): readonly RespArg[] =>
      typeof args === "function" ? args(s.primary) : args;
    if (options.durable === true) {
      return this.#withRetry(
        (s, signal) =>
          script.run(
            (a) => this.#durableOn(s, a, signal, options.bytes !== true),
            keys,
            argsFor(s),
          ),
        options,
        { name: "EVALSHA", durable: true },
      );
    }
    return this.#withRetry(
      (s, signal) =>
        script.run(
          (a) => s.hot.send(a, { signal, strings: options.bytes !== true }),
          keys,
          argsFor(s),
        ),
      options,
      { name: "EVALSHA", durable: false },
    );
  }

  #openConnection(options: { signal?: AbortSignal | undefined }): Promise<RedisConnection> {
    return this.#withRetry(
      (s, signal) =>
        RedisConnection.connect(s.primary.endpoint, {
          ...this.#connectOptions(),
          signal: signal === undefined
            ? this.#closing.signal
            : AbortSignal.any([signal, this.#closing.signal]),
        }),
      { idempotent: true, signal: options.signal },
      { name: "CONNECT", durable: false },
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

  /** One durable write on `session`: with its WAIT when WAIT is on. */
  #durableOn(
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
      performance.now(),
    );
    if (evidence === undefined) return reply;
    this.#replaced(session, evidence, "probe");
    throw new WaitError({
      acked: this.config.waitReplicas,
      required: this.config.waitReplicas,
      timeoutMs: this.config.waitTimeoutMs,
      failover: evidence,
    });
  }

  /** The caller's signal combined with its deadline; undefined when it has neither (the hot path). */
  #callSignal(options: CommandOptions): AbortSignal | undefined {
    const timeoutMs = options.timeoutMs ?? this.#options.operationTimeoutMs;
    if (timeoutMs === undefined) return options.signal;
    const deadline = AbortSignal.timeout(timeoutMs);
    return options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
  }

  async #withRetry<T>(
    op: (session: Session, signal: AbortSignal | undefined) => Promise<T>,
    options: CommandOptions,
    meta: { name: string; durable: boolean },
  ): Promise<T> {
    const started = performance.now();
    try {
      const result = await this.#attempts(op, options);
      this.#metrics.operation(meta.name, (performance.now() - started) / 1000, true);
      if (meta.durable) this.#metrics.write("confirmed");
      return result;
    } catch (error) {
      this.#metrics.operation(meta.name, (performance.now() - started) / 1000, false);
      if (meta.durable) this.#metrics.write(writeOutcome(error));
      throw error;
    }
  }

  async #attempts<T>(
    op: (session: Session, signal: AbortSignal | undefined) => Promise<T>,
    options: CommandOptions,
  ): Promise<T> {
    const idempotent = options.idempotent ?? false;
    const signal = this.#callSignal(options);
    const waitSignal = signal === undefined
      ? this.#closing.signal
      : AbortSignal.any([signal, this.#closing.signal]);
    const started = performance.now();
    // Once an attempt may have been applied (its WAIT failed, or its reply was lost before an
    // idempotent retry), giving up later is never a definite failure.
    let mayHaveApplied: string | undefined;
    const giveUp = (error: unknown): unknown => {
      if (mayHaveApplied === undefined) return error;
      if (error instanceof AbortedError && !error.mayHaveApplied) {
        return new AbortedError({
          mayHaveApplied: true,
          reason: error.cause,
          what: `Redis command (an earlier attempt ${mayHaveApplied})`,
        });
      }
      if (error instanceof RetriesExhaustedError) {
        return new OutcomeUnknownError(
          error.lastPrimary ?? "the primary",
          error,
          `an earlier attempt ${mayHaveApplied}, and the retries then gave up (${error.message})`,
        );
      }
      return error;
    };
    for (let attempt = 1;; attempt++) {
      let session: Session;
      // Waiting for a new session (the primary was lost) is unavailability this operation saw.
      const current = this.#session;
      const lost = current === undefined || current.retired ? this.#lastPrimary : undefined;
      try {
        session = await this.#sessionFor(waitSignal);
      } catch (error) {
        if (lost !== undefined) this.#metrics.operationAffected(started, lost.address);
        throw giveUp(error);
      }
      if (lost !== undefined) this.#metrics.operationAffected(started, lost.address);
      try {
        const result = await op(session, signal);
        this.#failures = 0;
        // A reply that arrives on a retired session (in flight when the primary was replaced)
        // does not end the window: only a session in service does.
        if (!session.retired) this.#metrics.operationSucceeded(session.primary.address);
        return result;
      } catch (error) {
        this.#metrics.error(errorCategory(error));
        if (isUnavailability(error)) {
          this.#metrics.operationAffected(started, session.primary.address);
        }
        if (error instanceof AbortedError) throw giveUp(error);
        if (isAuthReply(error)) {
          throw new AuthError(
            `Authentication to ${session.primary.address} failed (${error.prefix}); check MN_REDIS_USERNAME and MN_REDIS_PASSWORD`,
            { endpoint: session.primary.address, cause: error },
          );
        }
        if (error instanceof WaitError) {
          // A shortfall may mean the primary was replaced: re-check before anything else is sent there.
          const replaced = await this.#reverify(session);
          if (!(replaced && idempotent)) throw error;
          mayHaveApplied = `was applied on ${session.primary.address} but not confirmed by WAIT`;
        } else {
          if (
            this.config.haMode === "single" && error instanceof ReplyError &&
            error.prefix === "READONLY"
          ) {
            throw new NotPrimaryError(session.primary.address, session.primary.replicaOf, error);
          }
          const action = classifyFailure(error, { idempotent });
          if (action === "fatal") throw error;
          if (action === "outcome-unknown") {
            this.#sessionFailed(session, error);
            throw new OutcomeUnknownError(session.primary.address, error);
          }
          if (error instanceof ConnectionError && error.sendState === "sent") {
            mayHaveApplied = `reached ${session.primary.address} before its connection failed`;
          }
          this.#sessionFailed(session, error);
        }
        this.#retried++;
        if (attempt >= this.config.reconnectAttempts) {
          throw giveUp(
            new RetriesExhaustedError({
              attempts: attempt,
              lastPrimary: session.primary.address,
              elapsedMs: performance.now() - started,
              cause: error,
            }),
          );
        }
      }
    }
  }

  /** The confirmed session, or the shared reconnect loop's next one; `signal` gives up waiting. */
  #sessionFor(signal: AbortSignal): Promise<Session> {
    const current = this.#session;
    if (current !== undefined && !current.retired) return Promise.resolve(current);
    if (this.#establishing === undefined) {
      const establishing = this.#reconnectLoop().finally(() => {
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
   * The one reconnect loop: backs off by the consecutive failures, resolves
   * and confirms the primary. An attempt is cut short (and not counted) when
   * Sentinel announces a change; permanent failures end it at once.
   */
  async #reconnectLoop(): Promise<Session> {
    const started = performance.now();
    let attempts = 0;
    // After Sentinel announced a change, the next attempt starts at once (no backoff).
    let announced = false;
    while (true) {
      this.#closing.signal.throwIfAborted();
      if (this.#failures > 0 && !announced) {
        await this.#sleepUnlessFailover(
          backoffDelayMs(this.#failures, {
            backoffMs: this.config.reconnectBackoffMs,
            maxBackoffMs: this.config.reconnectMaxBackoffMs,
            random: this.#options.random,
          }),
        );
      }
      announced = false;
      const hint = this.#hint.signal;
      const switches = this.#switches;
      try {
        const session = await this.#establish(AbortSignal.any([this.#closing.signal, hint]));
        if (this.#switches !== switches && this.#switchTarget !== session.primary.address) {
          // Sentinel moved the primary while this one was being confirmed.
          await Promise.all([session.hot.close(), session.durable.close()]);
          announced = true;
          continue;
        }
        this.#install(session, attempts);
        return session;
      } catch (error) {
        this.#closing.signal.throwIfAborted();
        if (hint.aborted) {
          announced = true; // Sentinel announced a change mid-attempt: start over at once.
          continue;
        }
        if (isAuthReply(error)) {
          throw new AuthError(
            `Authentication to ${
              this.#target() ?? "the primary"
            } failed (${error.prefix}); check MN_REDIS_USERNAME and MN_REDIS_PASSWORD`,
            { endpoint: this.#target() ?? "", cause: error },
          );
        }
        if (classifyFailure(error, { idempotent: true }) === "fatal") throw error;
        attempts++;
        this.#attempted++;
        this.#lastAttemptError = error;
        this.#failures++;
        const message = error instanceof Error ? error.message : String(error);
        if (this.#failures >= this.config.reconnectAttempts) {
          const failures = this.#failures;
          this.#failures = 0;
          throw new RetriesExhaustedError({
            attempts: failures,
            lastPrimary: this.#target(),
            elapsedMs: performance.now() - started,
            cause: error,
          });
        }
        const delayMs = this.#nextDelayMs();
        this.#emitter.emit("reconnecting", {
          attempt: this.#failures,
          delayMs,
          error: message,
          primary: this.#target(),
        });
        logger.warn(
          "Redis reconnecting (attempt {attempt} of {attempts}, next in up to {delayMs}ms, last primary {primary}): {error}",
          {
            attempt: this.#failures,
            attempts: this.config.reconnectAttempts,
            delayMs,
            primary: this.#target() ?? null,
            error: message,
          },
        );
      }
    }
  }

  /** The address to name in errors: the last primary, or the single-mode URL. */
  #target(): string | undefined {
    return this.#lastPrimary?.address ??
      (this.#resolver === undefined ? formatEndpoint(this.config.url) : undefined);
  }

  /** Sleeps, but wakes early when Sentinel announces a failover; `close()` ends it. */
  async #sleepUnlessFailover(ms: number): Promise<void> {
    const hint = this.#hint.signal;
    try {
      await delay(ms, AbortSignal.any([hint, this.#closing.signal]));
    } catch (error) {
      this.#closing.signal.throwIfAborted();
      if (!hint.aborted) throw error;
    }
  }

  async #establish(signal: AbortSignal): Promise<Session> {
    let endpoint: Endpoint;
    let configEpoch: number | undefined;
    const asked = performance.now();
    if (this.#resolver !== undefined) {
      const decision = await this.#resolver.resolve({ signal });
      this.#lastDecision = decision;
      endpoint = decision.primary;
      configEpoch = decision.configEpoch;
      this.#silence?.setDownAfter(decision.downAfterMs);
      for (const stale of decision.stale) {
        const detail = {
          ...stale,
          chosen: formatEndpoint(decision.primary),
          chosenEpoch: decision.configEpoch,
        };
        this.#emitter.emit("stale-sentinel", detail);
        logger.warn(
          "Sentinel {sentinel} reports {reported} (epoch {configEpoch}); using {chosen} (epoch {chosenEpoch})",
          detail,
        );
      }
    } else {
      endpoint = this.config.url;
    }
    const address = formatEndpoint(endpoint);
    this.#silence?.named(address, asked);
    const opening = performance.now();
    try {
      const session = await openSession(endpoint, {
        connect: { ...this.#connectOptions(), signal },
        requireMaster: this.config.haMode === "sentinel",
        configEpoch,
        wait: { replicas: this.config.waitReplicas, timeoutMs: this.config.waitTimeoutMs },
        onRead: this.#silence === undefined ? undefined : () => this.#silence!.heard(address),
      });
      // Connecting and confirming the primary is an operation too (and the duration histogram
      // has a series from the first connect on).
      this.#metrics.operation("CONNECT", (performance.now() - opening) / 1000, true);
      return session;
    } catch (error) {
      this.#metrics.operation("CONNECT", (performance.now() - opening) / 1000, false);
      if (error instanceof NotPermittedError) {
        throw this.#notPermitted(address, configEpoch, error);
      }
      throw error;
    }
  }

  /**
   * The primary the sentinels name is outside this process's network
   * permission. The failover still happened, so it is reported once (the
   * `failover` event and one warning); every command then fails at once with
   * a {@link NotPermittedError} that names the address and the flag.
   */
  #notPermitted(
    address: string,
    configEpoch: number | undefined,
    error: NotPermittedError,
  ): NotPermittedError {
    const role = this.#resolver === undefined ? "MN_REDIS_URL" : "the primary the sentinels name";
    const typed = new NotPermittedError(address, { role, cause: error.cause });
    if (this.#unpermitted === address) return typed;
    this.#unpermitted = address;
    const previous = this.#lastPrimary?.address;
    if (previous !== undefined && previous !== address) {
      // A failover to a node this process may not reach: its commands fail from now on.
      const detail = { from: previous, to: address, configEpoch };
      this.#metrics.failover(this.#retiredBy, { ...detail, replid: "" });
      this.#emitter.emit("failover", detail);
      logger.error("{message}", { message: typed.message });
    }
    return typed;
  }

  /** Puts a confirmed session in service and reports the reconnect or failover once. */
  #install(session: Session, attempts: number): void {
    session.hot.onClose((error) => this.#sessionFailed(session, error));
    session.durable.onClose((error) => this.#sessionFailed(session, error));
    const previous = this.#lastPrimary;
    const address = session.primary.address;
    const configEpoch = session.primary.configEpoch;
    this.#session = session;
    this.#unpermitted = undefined;
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
  #sessionFailed(session: Session, error: unknown): void {
    if (session.retired) return;
    this.#retire(session, error instanceof ConnectionError);
    if (this.#closing.signal.aborted) return;
    const reason = errorCategory(error);
    this.#retiredBy = reason === "readonly" ? "role_mismatch" : "connection";
    this.#metrics.reconnect(reason, session.primary.address);
    this.#failures++;
    const message = error instanceof Error ? error.message : String(error);
    this.#emitter.emit("reconnecting", {
      attempt: this.#failures,
      delayMs: this.#nextDelayMs(),
      error: message,
      primary: session.primary.address,
    });
    logger.warn("Redis primary {primary} failed: {error}; reconnecting", {
      primary: session.primary.address,
      error: message,
    });
  }

  /** The longest the reconnect loop will wait before its next attempt. */
  #nextDelayMs(): number {
    return backoffDelayMs(this.#failures, {
      backoffMs: this.config.reconnectBackoffMs,
      maxBackoffMs: this.config.reconnectMaxBackoffMs,
      random: () => 1,
    });
  }

  /**
   * Re-checks that `session` still talks to the primary (ROLE, and in
   * sentinel mode what the sentinels name). Retires it when not; returns
   * whether it was retired. Concurrent callers share one check.
   */
  #reverify(session: Session): Promise<boolean> {
    if (session.retired) return Promise.resolve(true);
    let check = this.#reverifying.get(session);
    if (check === undefined) {
      check = this.#checkPrimary(session);
      this.#reverifying.set(session, check);
      void check.finally(() => this.#reverifying.delete(session));
    }
    return check;
  }

  async #checkPrimary(session: Session): Promise<boolean> {
    const timeoutMs = this.#options.probeTimeoutMs ?? 1000;
    try {
      const reply = await session.hot.send(["ROLE"], {
        timeoutMs,
        signal: this.#closing.signal,
      });
      const role = Array.isArray(reply) ? replyToString(reply[0]) : null;
      if (this.config.haMode === "sentinel" && role !== "master") {
        this.#replaced(session, `ROLE reports ${role}`, "role_mismatch");
        return true;
      }
      if (this.#resolver !== undefined) {
        const decision = await this.#resolver.resolve({
          signal: AbortSignal.any([this.#closing.signal, AbortSignal.timeout(timeoutMs)]),
        });
        const named = formatEndpoint(decision.primary);
        if (named !== session.primary.address) {
          this.#replaced(session, `the sentinels now name ${named}`, "probe");
          return true;
        }
      }
      return session.retired;
    } catch (error) {
      if (this.#closing.signal.aborted) return true;
      this.#sessionFailed(session, error);
      return true;
    }
  }

  /** The session's node is no longer the primary: stop sending there, wake the reconnect loop. */
  #replaced(session: Session, why: string, source: FailoverSource): void {
    if (session.retired) return;
    this.#retiredBy = source;
    this.#metrics.reconnect(source, session.primary.address);
    logger.warn("Redis primary {primary} was replaced ({why}); switching", {
      primary: session.primary.address,
      why,
    });
    this.#retire(session, false);
    this.#wake();
  }

  #wake(): void {
    const hint = this.#hint;
    this.#hint = new AbortController();
    hint.abort();
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
      this.#track(Promise.all([session.hot.close(), session.durable.close()]));
    } else if (first) {
      const graceMs = this.#options.probeTimeoutMs ?? 1000;
      this.#track((async () => {
        const grace = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(graceMs)]);
        await abortable(
          Promise.all([session.hot.whenIdle(), session.durable.whenIdle()]),
          grace,
        ).catch(() => {});
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
    this.#emitter.emit("sentinel-event", event);
    logger.info("Sentinel {sentinel} published {channel} {payload}", { ...event });
    const current = this.#session;
    if (event.channel === "+switch-master") {
      const target = parseSwitchMaster(event.payload)?.to;
      if (target !== undefined) {
        this.#switches++;
        this.#switchTarget = formatEndpoint(target);
      }
      if (current !== undefined && current.primary.address !== this.#switchTarget) {
        this.#replaced(current, `+switch-master to ${this.#switchTarget ?? "?"}`, "sentinel_event");
        return;
      }
    }
    if (
      event.channel === "+convert-to-slave" && current !== undefined &&
      eventInstanceAddress(event.payload) === current.primary.address
    ) {
      this.#replaced(current, "Sentinel converted it to a replica", "sentinel_event");
      return;
    }
    if (event.channel !== "+sentinel") this.#wake();
  }

  async #probeLoop(): Promise<void> {
    const intervalMs = this.#options.probeIntervalMs ?? 1000;
    const timeoutMs = this.#options.probeTimeoutMs ?? 1000;
    while (!this.#closing.signal.aborted) {
      // At least twice per silence threshold, so a healthy idle primary never looks silent.
      const thresholdMs = this.#silence?.thresholdMs;
      try {
        await delay(
          thresholdMs === undefined ? intervalMs : Math.min(intervalMs, thresholdMs / 2),
          this.#closing.signal,
        );
      } catch {
        return;
      }
      const session = this.#session;
      if (session === undefined || session.retired) continue;
      try {
        const reply = await session.hot.send(["ROLE"], { timeoutMs, signal: this.#closing.signal });
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

  #probeFailed(session: Session, error: string, broken: boolean): void {
    if (session.retired) return;
    this.#emitter.emit("probe-failed", { primary: session.primary.address, error });
    if (broken) {
      // Hung or unreachable: close it now, so in-flight commands are retried or reported.
      this.#sessionFailed(
        session,
        new ConnectionError(`probe failed: ${error}`, { endpoint: session.primary.address }),
      );
      this.#wake();
    } else {
      this.#replaced(session, `its probe found ${error}`, "probe");
    }
  }

  /**
   * Stops the probe and the Sentinel watcher and closes every connection.
   * Returns within about a second whatever the peers do (hung sentinels or
   * nodes included). Idempotent.
   */
  async close(): Promise<void> {
    this.#closing.abort(new Error("client closed"));
    await this.#probe;
    await this.#establishing?.catch(() => {});
    if (this.#session !== undefined) this.#retire(this.#session, true);
    await Promise.all([this.#watcher?.close(), this.#resolver?.close()]);
    while (this.#background.size > 0) await Promise.all([...this.#background]);
  }

  /** Same as {@link RedisHaClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
