/**
 * The HA client: one authoritative write path to the confirmed primary, in
 * single or sentinel mode. This is its front: commands, durable writes and
 * scripts, each with its retry policy and metrics. The session in service,
 * the reconnect loop, the probe and the Sentinel hints behind it are the
 * {@link PrimaryLink} (`primary_link.ts`).
 *
 * @module
 */

import type { Config } from "./config.ts";
import { RedisConnection } from "../protocol/connection.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { PersistenceError } from "../common/reply_errors.ts";
import {
  AbortedError,
  AuthError,
  ConnectionError,
  NotPrimaryError,
  OutcomeUnknownError,
  ReplyError,
  RetriesExhaustedError,
  WaitError,
} from "../common/errors.ts";
import type { PrimaryInfo, Session } from "./_session.ts";
import { HaEventEmitter, type HaEvents } from "./events.ts";
import { ClientMetrics } from "./client_metrics.ts";
import type { ClientOptions, CommandOptions } from "./client_options.ts";
import {
  classifyFailure,
  errorCategory,
  isAuthReply,
  isUnavailability,
  writeOutcome,
} from "./failures.ts";
import type { MasterDecision } from "./resolver_decision.ts";
import type { RespArg, RespReply } from "../protocol/resp.ts";
import type { Script } from "../protocol/script.ts";
import { PrimaryLink } from "./primary_link.ts";
import {
  checkReadOnly,
  type ReadOptions,
  type ReadRun,
  type ReadScope,
  ReplicaReads,
  type ServedRead,
} from "./replica_reads.ts";
import { SYSTEM_CLOCK } from "../common/clock.ts";

export type { PrimaryInfo } from "./_session.ts";
export type { ClientOptions, CommandOptions } from "./client_options.ts";
export type { ReadOptions, ServedRead } from "./replica_reads.ts";

/** The operation name of a command, for metrics: its first word, upper case. */
function operationName(args: readonly RespArg[]): string {
  const first = args[0];
  return typeof first === "string" ? first.toUpperCase() : "COMMAND";
}

/** A script's arguments, or a function of the confirmed primary it is about to run on. */
export type ScriptArgs = readonly RespArg[] | ((primary: PrimaryInfo) => readonly RespArg[]);

/** {@link runScript}'s options: a durable script waits for replicas like {@link RedisHaClient.durable}. */
export type ScriptOptions = CommandOptions & { durable?: boolean | undefined };

/** What the state layer may do with a client beyond its public API. */
export interface ClientInternals {
  /** See {@link runScript}. */
  runScript(
    script: Script,
    keys: readonly string[],
    args: ScriptArgs,
    options: ScriptOptions,
  ): Promise<RespReply>;
  /** See {@link openConnection}. */
  openConnection(options: { signal?: AbortSignal | undefined }): Promise<RedisConnection>;
  /** See {@link readWith}. */
  read(run: ReadRun, options: ReadOptions, scope?: ReadScope): Promise<ServedRead>;
}

/**
 * The key of a client's {@link ClientInternals}. `mod.ts` does not export it:
 * only the state layer reaches a client's internals.
 */
export const CLIENT_INTERNALS: unique symbol = Symbol("mn-redis-ha client internals");

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
  return client[CLIENT_INTERNALS].runScript(script, keys, args, options);
}

/**
 * Runs a read (one command, or a `no-writes` script through `run`'s `send`)
 * per the read policy: on the primary or a replica that proves it is recent
 * enough; with a `scope`, every read of the scope on the node the first one
 * used. Internal to the state layer: not exported from `mod.ts`.
 */
export function readWith(
  client: RedisHaClient,
  run: ReadRun,
  options: ReadOptions = {},
  scope?: ReadScope,
): Promise<ServedRead> {
  return client[CLIENT_INTERNALS].read(run, options, scope);
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
  return client[CLIENT_INTERNALS].openConnection(options);
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
  readonly #metrics: ClientMetrics = new ClientMetrics();
  readonly #options: ClientOptions;
  readonly #link: PrimaryLink;
  readonly #reads: ReplicaReads;
  readonly #internals: ClientInternals;

  private constructor(config: Config, options: ClientOptions) {
    this.config = config;
    const emitter = new HaEventEmitter();
    // A frozen facade: a listener cannot reach the emitter to forge an event.
    this.events = Object.freeze({ on: emitter.on.bind(emitter) });
    this.#options = options;
    this.#link = new PrimaryLink({ config, options, metrics: this.#metrics, emitter });
    this.#reads = new ReplicaReads({
      config,
      link: this.#link,
      replicas: this.#link.replicas,
      metrics: this.#metrics,
      clock: options.clock ?? SYSTEM_CLOCK,
      replicaTimeoutMs: options.replicaTimeoutMs ?? 250,
      sampleTimeoutMs: options.probeTimeoutMs ?? 1000,
      primaryRead: (run, readOptions) => {
        let node = "";
        const strings = readOptions.bytes !== true;
        return this.#withRetry(
          (s, signal) => {
            node = s.primary.address;
            return run((a) => s.hot.send(a, { signal, strings }));
          },
          { ...readOptions, idempotent: true },
          { name: "READ", durable: false, write: false },
        ).then((reply) => ({ reply, node }));
      },
    });
    const internals: ClientInternals = {
      runScript: (script, keys, args, scriptOptions) =>
        this.#runScript(script, keys, args, scriptOptions),
      openConnection: (connectOptions) => this.#openConnection(connectOptions),
      read: (run, readOptions, scope) => this.#reads.read(run, readOptions, scope),
    };
    this.#internals = Object.freeze(internals);
  }

  /**
   * Creates a client and connects to the confirmed primary, retrying
   * reconnectable failures per the configuration, within
   * `options.firstConnectTimeoutMs`. Permanent failures (wrong credentials,
   * a "sentinel" that is not one, TLS on one side only, an unknown master
   * name) fail at once; `options.signal` aborts it.
   */
  static async connect(config: Config, options: ClientOptions = {}): Promise<RedisHaClient> {
    const client = new RedisHaClient(config, options);
    try {
      await client.#link.open(options.signal, options.firstConnectTimeoutMs ?? 10_000);
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** The confirmed primary of the current connection, if connected. */
  get primary(): PrimaryInfo | undefined {
    return this.#link.primary;
  }

  /**
   * The last Sentinel decision (sentinel mode), with every sentinel's answer.
   * @internal For `status` and `inspect`.
   */
  get lastDecision(): MasterDecision | undefined {
    return this.#link.lastDecision;
  }

  /**
   * What the state layer may do beyond the public API (run scripts, open a
   * connection for blocking reads); its key is not exported from `mod.ts`.
   * @internal
   */
  get [CLIENT_INTERNALS](): ClientInternals {
    return this.#internals;
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
    return this.#link.sentinels;
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
   * Runs a read-only command (`GET`, `HGETALL`, `XRANGE`, …; others are
   * refused with `ValidationError`) where the read policy says:
   * `MN_REDIS_READ_FROM` or `options.readFrom`. `replica-preferred` and
   * `replica` read a replica only when it proves, in the same round trip,
   * that it holds every write this client completed before the read and the
   * primary's state of at most `maxLagMs` before the read was issued; else
   * the primary serves it (`replica-preferred`) or it rejects with
   * `NoReplicaError` (`replica`). See the README's "Reading from replicas".
   *
   * @example
   * ```ts
   * import { parseConfig, RedisHaClient } from "@mirror-neuron/redis-ha";
   * await using client = await RedisHaClient.connect(parseConfig((n) => Deno.env.get(n)));
   * const value = await client.read(["GET", "mirror_neuron:hello"], {
   *   readFrom: "replica-preferred",
   *   maxLagMs: 200,
   * });
   * console.log(value);
   * ```
   */
  async read(args: readonly RespArg[], options: ReadOptions = {}): Promise<RespReply> {
    return (await this.readServed(args, options)).reply;
  }

  /** Same as {@link RedisHaClient.read}, also saying which node served the read and why. */
  readServed(args: readonly RespArg[], options: ReadOptions = {}): Promise<ServedRead> {
    checkReadOnly(args);
    return this.#reads.read((send) => send(args), options);
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
      (s, signal) => this.#link.durableOn(s, args, signal, options.bytes !== true),
      options,
      { name: operationName(args), durable: true },
    );
  }

  #runScript(
    script: Script,
    keys: readonly string[],
    args: ScriptArgs,
    options: ScriptOptions,
  ): Promise<RespReply> {
    const strings = options.bytes !== true;
    const argsFor = (s: Session): readonly RespArg[] =>
      typeof args === "function" ? args(s.primary) : args;
    const durable = options.durable === true;
    return this.#withRetry(
      (s, signal) =>
        script.run(
          (a) =>
            durable
              ? this.#link.durableOn(s, a, signal, strings)
              : s.hot.send(a, { signal, strings }),
          keys,
          argsFor(s),
        ),
      options,
      { name: "EVALSHA", durable },
    );
  }

  #openConnection(options: { signal?: AbortSignal | undefined }): Promise<RedisConnection> {
    const closing = this.#link.closing;
    return this.#withRetry(
      (s, signal) =>
        RedisConnection.connect(s.primary.endpoint, {
          ...this.#link.connectOptions(),
          signal: signal === undefined ? closing : AbortSignal.any([signal, closing]),
        }),
      { idempotent: true, signal: options.signal },
      { name: "CONNECT", durable: false, write: false },
    );
  }

  /** The caller's signal combined with its deadline; undefined when it has neither (the hot path). */
  #callSignal(options: CommandOptions): AbortSignal | undefined {
    const timeoutMs = options.timeoutMs ?? this.#options.operationTimeoutMs;
    if (timeoutMs === undefined) return options.signal;
    const deadline = AbortSignal.timeout(timeoutMs);
    return options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
  }

  /** Runs `op` with the retry policy, recording its duration and (durable) outcome. */
  async #withRetry<T>(
    op: (session: Session, signal: AbortSignal | undefined) => Promise<T>,
    options: CommandOptions,
    meta: { name: string; durable: boolean; write?: false | undefined },
  ): Promise<T> {
    const started = performance.now();
    try {
      const result = await this.#attempts(op, options);
      if (meta.write !== false) this.#reads.wrote();
      this.#metrics.operation(meta.name, (performance.now() - started) / 1000, true);
      if (meta.durable) this.#metrics.write("confirmed");
      return result;
    } catch (error) {
      // A failed write may have been applied: later reads must not be older than it either.
      if (meta.write !== false) this.#reads.wrote();
      this.#metrics.operation(meta.name, (performance.now() - started) / 1000, false);
      if (meta.durable) this.#metrics.write(writeOutcome(error));
      throw error;
    }
  }

  /**
   * The retry policy of one operation: attempts on the session in service
   * (waiting for the reconnect loop's next one when it is lost), up to
   * `MN_REDIS_RECONNECT_ATTEMPTS`. Once an attempt may have been applied
   * (its WAIT failed, or its reply was lost before an idempotent retry),
   * giving up later is never a definite failure.
   */
  async #attempts<T>(
    op: (session: Session, signal: AbortSignal | undefined) => Promise<T>,
    options: CommandOptions,
  ): Promise<T> {
    const idempotent = options.idempotent ?? false;
    const signal = this.#callSignal(options);
    const closing = this.#link.closing;
    const waitSignal = signal === undefined ? closing : AbortSignal.any([signal, closing]);
    const started = performance.now();
    let mayHaveApplied: string | undefined;
    const giveUp = (error: unknown): unknown => mayHaveAppliedError(error, mayHaveApplied);
    for (let attempt = 1;; attempt++) {
      // The session in service, at once (no await: most operations take this path).
      const session = this.#link.current ??
        await this.#sessionFor(waitSignal, started).catch((error) => {
          throw giveUp(error);
        });
      try {
        const result = await op(session, signal);
        this.#link.succeeded();
        // A reply that arrives on a retired session (in flight when the primary was replaced)
        // does not end the window: only a session in service does.
        if (!session.retired) this.#metrics.operationSucceeded(session.primary.address);
        return result;
      } catch (error) {
        const applied = await this.#attemptFailed(session, error, idempotent, started).catch(
          (surfaced) => {
            throw giveUp(surfaced);
          },
        );
        if (applied !== undefined) mayHaveApplied = applied;
        this.#link.retrying();
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

  /**
   * The session for an attempt of an operation started at `started`; waiting
   * for a new one (the primary was lost) is unavailability the operation saw.
   */
  async #sessionFor(signal: AbortSignal, started: number): Promise<Session> {
    const lost = this.#link.inService ? undefined : this.#link.lastPrimary;
    try {
      return await this.#link.session(signal);
    } finally {
      if (lost !== undefined) this.#metrics.operationAffected(started, lost.address);
    }
  }

  /**
   * One attempt failed: throws what must surface, retires the session when
   * it is gone, and returns how the attempt may have been applied (for the
   * error a later give-up reports) when it may have been.
   */
  async #attemptFailed(
    session: Session,
    error: unknown,
    idempotent: boolean,
    started: number,
  ): Promise<string | undefined> {
    const address = session.primary.address;
    this.#metrics.error(errorCategory(error));
    if (isUnavailability(error)) this.#metrics.operationAffected(started, address);
    if (error instanceof AbortedError) throw error;
    if (isAuthReply(error)) {
      throw new AuthError(
        `Authentication to ${address} failed (${error.prefix}); check MN_REDIS_USERNAME and MN_REDIS_PASSWORD`,
        { endpoint: address, cause: error },
      );
    }
    // A node that cannot persist looks down to Sentinel: its next acknowledgements are checked.
    if (error instanceof PersistenceError) this.#link.refused(session);
    if (error instanceof WaitError) {
      // A shortfall may mean the primary was replaced: re-check before anything else is sent there.
      const replaced = await this.#link.reverify(session);
      if (!(replaced && idempotent)) throw error;
      return `was applied on ${address} but not confirmed by WAIT`;
    }
    if (
      this.config.haMode === "single" && error instanceof ReplyError && error.prefix === "READONLY"
    ) {
      throw new NotPrimaryError(address, session.primary.replicaOf, error);
    }
    const action = classifyFailure(error, { idempotent });
    if (action === "fatal") throw error;
    this.#link.sessionFailed(session, error);
    if (action === "outcome-unknown") throw new OutcomeUnknownError(address, error);
    return error instanceof ConnectionError && error.sendState === "sent"
      ? `reached ${address} before its connection failed`
      : undefined;
  }

  /**
   * Stops the probe and the Sentinel watcher and closes every connection.
   * Returns within about a second whatever the peers do (hung sentinels or
   * nodes included). Idempotent.
   */
  close(): Promise<void> {
    return this.#link.close();
  }

  /** Same as {@link RedisHaClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * What giving up reports once an earlier attempt may have been applied
 * (`mayHaveApplied` says how): never a definite failure.
 */
function mayHaveAppliedError(error: unknown, mayHaveApplied: string | undefined): unknown {
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
}
