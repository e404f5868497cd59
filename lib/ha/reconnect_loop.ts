/**
 * The one reconnect loop of a client: it backs off by the consecutive
 * failures (jittered, exponential), resolves the primary from the
 * sentinels (or takes `MN_REDIS_URL`), and opens a session confirmed with
 * `ROLE`. Sentinel's announcements cut a backoff or an attempt short; a
 * permanent failure ends the loop at once; the attempts are bounded by
 * `MN_REDIS_RECONNECT_ATTEMPTS`. The {@link PrimaryLink} puts what it
 * returns in service.
 *
 * @module
 */

import type { Clock } from "../common/clock.ts";
import { backoffDelayMs } from "./backoff.ts";
import type { ConnectOptions } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import {
  AuthError,
  NotPermittedError,
  RetriesExhaustedError,
  RoleMismatchError,
} from "../common/errors.ts";
import { openSession, type PrimaryInfo, type Session } from "./_session.ts";
import type { FailoverSource } from "./client_metrics.ts";
import type { ClientParts } from "./client_options.ts";
import { libraryLogger } from "../common/log.ts";
import { classifyFailure, isAuthReply } from "./failures.ts";
import type { MasterDecision, SentinelAnswer } from "./resolver_decision.ts";
import type { SentinelResolver } from "./sentinel_resolver.ts";
import type { SilenceGuard } from "./silence_guard.ts";

const logger = libraryLogger("client");

/** What the loop asks of the link it works for. */
export interface LoopLink {
  /**
   * How far Sentinel's events reach the link: a generation that changes
   * whenever a subscription is lost (events may have been missed since), or
   * undefined while it is not subscribed to a majority of the sentinels.
   */
  watching(): number | undefined;
  /** The last primary a session was confirmed with. */
  lastPrimary(): PrimaryInfo | undefined;
  /** What retired the last session (the `source` of a failover it then finds). */
  retiredBy(): FailoverSource;
  /** The connection settings of a data node. */
  connectOptions(): ConnectOptions;
}

/** What the loop works with: the link's parts, and the link's resolver, guard and clock. */
export interface ReconnectLoopParts extends ClientParts {
  /** The clock the backoff waits on. */
  readonly clock: Clock;
  /** The resolver (sentinel mode). */
  readonly resolver: SentinelResolver | undefined;
  /** The silence guard (sentinel mode): told which primary was named when. */
  readonly silence: SilenceGuard | undefined;
  /** Aborted once the client is closing. */
  readonly closing: AbortSignal;
}

/** A primary the sentinels named, and when. */
interface NamedPrimary {
  readonly endpoint: Endpoint;
  readonly configEpoch: number | undefined;
  /** The watcher's generation when it was named (see {@link LoopLink.watching}). */
  readonly generation: number | undefined;
  /** When the sentinels named it (the clock's milliseconds). */
  readonly at: number;
  /**
   * How long into an outage the name is trusted without asking again: twice
   * the sentinels' down-after, plus 2 s (by then Sentinel has announced the
   * failover it would make).
   */
  readonly trustMs: number;
}

/** Where the loop connects next, and (after an announced switch) the answer that must agree. */
interface Choice {
  readonly endpoint: Endpoint;
  readonly configEpoch: number | undefined;
  /** The announcing sentinel's answer, asked while the session opens. */
  readonly confirm?: { readonly sentinel: string; readonly answer: Promise<SentinelAnswer> };
}

/** How long a name is trusted when the sentinels' down-after is unknown. */
const DEFAULT_TRUST_MS = 62_000;

/** Finds and confirms the next primary, one attempt after another. */
export class ReconnectLoop {
  readonly #link: LoopLink;
  readonly #parts: ReconnectLoopParts;
  /** Aborted when Sentinel announces a change: ends a backoff or an attempt at once. */
  #announcement = new AbortController();
  /** Consecutive failures (sessions lost, attempts failed) since a command last succeeded. */
  #failures = 0;
  /** Attempts that failed so far, and the last one's error (for the first connect's deadline). */
  #attempted = 0;
  #lastAttemptError: unknown;
  /** The latest `+switch-master` target, and how many switches were seen. */
  #switchTarget: string | undefined;
  #switches = 0;
  #lastDecision: MasterDecision | undefined;
  /**
   * The last primary the sentinels named, reused by later attempts while it
   * can be trusted (see {@link ReconnectLoop.#choosePrimary}).
   */
  #named: NamedPrimary | undefined;
  /** A switch Sentinel announced and the loop has not acted on yet. */
  #hint: { target: Endpoint; sentinel: string } | undefined;
  /** When a command last succeeded (the clock's milliseconds): an outage started after it. */
  #lastSuccessAt = 0;
  /** The primary last found outside the network permission (reported once). */
  #unpermitted: string | undefined;

  /** A loop for `link`; it runs when {@link ReconnectLoop.run} is called. */
  constructor(link: LoopLink, parts: ReconnectLoopParts) {
    this.#link = link;
    this.#parts = parts;
  }

  /** The last Sentinel decision, with every sentinel's answer. */
  get lastDecision(): MasterDecision | undefined {
    return this.#lastDecision;
  }

  /** Attempts that failed so far, and the last one's error. */
  get attempted(): { count: number; lastError: unknown } {
    return { count: this.#attempted, lastError: this.#lastAttemptError };
  }

  /** The latest `+switch-master` target, if any was announced. */
  get switchTarget(): string | undefined {
    return this.#switchTarget;
  }

  /**
   * Sentinel `sentinel` announced a switch to `target`. The first
   * announcement of a target wakes the loop, which connects straight to it
   * (confirming its config-epoch with that sentinel); the same switch
   * announced again by the other sentinels changes nothing.
   */
  switched(target: Endpoint, sentinel: string): void {
    const address = formatEndpoint(target);
    if (address === this.#switchTarget) return;
    this.#switches++;
    this.#switchTarget = address;
    this.#hint = { target, sentinel };
    this.#named = undefined;
    this.wake();
  }

  /** The primary the loop last connected to is not the primary any more: ask the sentinels anew. */
  forget(): void {
    this.#named = undefined;
  }

  /** Sentinel announced a change: the loop's backoff (or attempt) ends now. */
  wake(): void {
    const announcement = this.#announcement;
    this.#announcement = new AbortController();
    announcement.abort();
  }

  /** A command succeeded: the consecutive failures start over. */
  succeeded(): void {
    this.#failures = 0;
    this.#lastSuccessAt = this.#parts.clock.now();
  }

  /** The session in service failed: one more consecutive failure, and the next backoff. */
  failed(): { attempt: number; delayMs: number } {
    this.#failures++;
    return { attempt: this.#failures, delayMs: this.longestNextDelayMs() };
  }

  /**
   * The one reconnect loop: backs off by the consecutive failures, resolves
   * and confirms the primary. An attempt is cut short (and not counted) when
   * Sentinel announces a change; permanent failures end it at once.
   */
  async run(): Promise<{ session: Session; attempts: number }> {
    const started = this.#parts.clock.now();
    let attempts = 0;
    // After Sentinel announced a change, the next attempt starts at once (no backoff).
    let announced = false;
    while (true) {
      this.#parts.closing.throwIfAborted();
      if (this.#failures > 0 && !announced) {
        await this.#sleepUnlessAnnounced(
          backoffDelayMs(this.#failures, {
            backoffMs: this.#parts.config.reconnectBackoffMs,
            maxBackoffMs: this.#parts.config.reconnectMaxBackoffMs,
            random: this.#parts.options.random,
          }),
        );
      }
      announced = false;
      const announcement = this.#announcement.signal;
      const switches = this.#switches;
      try {
        const session = await this.#establish(
          AbortSignal.any([this.#parts.closing, announcement]),
        );
        if (this.#switches !== switches && this.#switchTarget !== session.primary.address) {
          // Sentinel moved the primary while this one was being confirmed.
          await Promise.all([session.hot.close(), session.durable.close()]);
          announced = true;
          continue;
        }
        this.#unpermitted = undefined;
        // Confirmed now: what the sentinels named stays trusted while the subscriptions that
        // would announce its replacement last (the watcher may have subscribed since it was named).
        if (
          this.#named !== undefined &&
          formatEndpoint(this.#named.endpoint) === session.primary.address
        ) {
          this.#named = { ...this.#named, generation: this.#link.watching() };
        }
        return { session, attempts };
      } catch (error) {
        this.#parts.closing.throwIfAborted();
        if (announcement.aborted) {
          announced = true; // Sentinel announced a change mid-attempt: start over at once.
          continue;
        }
        this.#attemptFailed(error, started);
        attempts++;
      }
    }
  }

  /**
   * One reconnect attempt failed: a permanent failure ends the loop, the
   * last allowed attempt gives up, any other is counted and logged once.
   */
  #attemptFailed(error: unknown, started: number): void {
    if (isAuthReply(error)) {
      throw new AuthError(
        `Authentication to ${
          this.addressForErrors() ?? "the primary"
        } failed (${error.prefix}); check MN_REDIS_USERNAME and MN_REDIS_PASSWORD`,
        { endpoint: this.addressForErrors() ?? "", cause: error },
      );
    }
    if (classifyFailure(error, { idempotent: true }) === "fatal") throw error;
    // The node answered and is not the primary: ask the sentinels anew next time (a node that
    // does not answer keeps the cached name until Sentinel announces its replacement).
    if (error instanceof RoleMismatchError) this.#named = undefined;
    this.#attempted++;
    this.#lastAttemptError = error;
    this.#failures++;
    const message = error instanceof Error ? error.message : String(error);
    if (this.#failures >= this.#parts.config.reconnectAttempts) {
      const failures = this.#failures;
      this.#failures = 0;
      throw new RetriesExhaustedError({
        attempts: failures,
        lastPrimary: this.addressForErrors(),
        elapsedMs: this.#parts.clock.now() - started,
        cause: error,
      });
    }
    const delayMs = this.longestNextDelayMs();
    const primary = this.addressForErrors();
    this.#parts.emitter.emit("reconnecting", {
      attempt: this.#failures,
      delayMs,
      error: message,
      primary,
    });
    // One warning per outage at most from here: when two attempts are left (the first, with
    // fewer attempts). A failover usually ends well before; its one warning is the "primary
    // changed" line.
    const warn = this.#failures === Math.max(1, this.#parts.config.reconnectAttempts - 2);
    (warn ? logger.warn : logger.info)(
      "Redis reconnecting (attempt {attempt} of {attempts}, next in up to {delayMs}ms, last primary {primary}): {error}",
      {
        attempt: this.#failures,
        attempts: this.#parts.config.reconnectAttempts,
        delayMs,
        primary: primary ?? null,
        error: message,
      },
    );
  }

  /** The address to name in errors: the last primary, or the single-mode URL. */
  addressForErrors(): string | undefined {
    return this.#link.lastPrimary()?.address ??
      (this.#parts.resolver === undefined ? formatEndpoint(this.#parts.config.url) : undefined);
  }

  /** Sleeps, but wakes early when Sentinel announces a change; `close()` ends it. */
  async #sleepUnlessAnnounced(ms: number): Promise<void> {
    const announcement = this.#announcement.signal;
    try {
      await this.#parts.clock.sleep(ms, AbortSignal.any([announcement, this.#parts.closing]));
    } catch (error) {
      this.#parts.closing.throwIfAborted();
      if (!announcement.aborted) throw error;
    }
  }

  /**
   * Where to connect, from the cheapest source that can be trusted:
   * - a switch Sentinel just announced: its target, connected to at once
   *   while the announcing sentinel is asked (one command to one sentinel)
   *   whether it still names it, and with which config-epoch;
   * - the primary the sentinels named last, up to twice their down-after
   *   (plus 2 s) into an outage, while no switch was announced
   *   since and the link has been subscribed to a majority of the sentinels
   *   all along (a subscription lost, events may have been missed): attempts
   *   against a primary that just died then cost the sentinels nothing, and
   *   the announcement of its replacement ends them;
   * - otherwise, all sentinels (see {@link SentinelResolver.resolve}).
   */
  async #choosePrimary(signal: AbortSignal): Promise<Choice> {
    const resolver = this.#parts.resolver;
    if (resolver === undefined) return { endpoint: this.#parts.config.url, configEpoch: undefined };
    const hint = this.#hint;
    if (hint !== undefined) {
      this.#hint = undefined;
      // Asked while the session opens, not before it: the answer only has to agree.
      const confirm = resolver.ask(hint.sentinel, { signal });
      confirm.catch(() => {});
      return {
        endpoint: hint.target,
        configEpoch: undefined,
        confirm: { ...hint, answer: confirm },
      };
    }
    const named = this.#named;
    const generation = this.#link.watching();
    if (
      named !== undefined && generation !== undefined && named.generation === generation &&
      this.#parts.clock.now() - Math.max(named.at, this.#lastSuccessAt) < named.trustMs
    ) {
      return { endpoint: named.endpoint, configEpoch: named.configEpoch };
    }
    const decision = await resolver.resolve({ signal });
    this.#lastDecision = decision;
    this.#parts.silence?.setDownAfter(decision.downAfterMs);
    this.#reportStale(decision);
    this.#named = {
      endpoint: decision.primary,
      configEpoch: decision.configEpoch,
      generation: this.#link.watching(),
      at: this.#parts.clock.now(),
      trustMs: decision.downAfterMs === undefined
        ? DEFAULT_TRUST_MS
        : 2 * decision.downAfterMs + 2_000,
    };
    return { endpoint: decision.primary, configEpoch: decision.configEpoch };
  }

  /**
   * Chooses the primary and opens a confirmed session to it. A session
   * opened on an announced switch is kept once the announcing sentinel
   * names the same primary (its config-epoch is then the session's);
   * otherwise it is closed and the sentinels are asked in full.
   */
  async #establish(signal: AbortSignal): Promise<Session> {
    while (true) {
      const asked = this.#parts.clock.now();
      const choosing = performance.now();
      const choice = await this.#choosePrimary(signal);
      const address = formatEndpoint(choice.endpoint);
      this.#parts.silence?.named(address, asked);
      const opening = performance.now();
      let session: Session;
      try {
        session = await openSession(choice.endpoint, {
          connect: { ...this.#link.connectOptions(), signal },
          requireMaster: this.#parts.config.haMode === "sentinel",
          configEpoch: choice.configEpoch,
          wait: {
            replicas: this.#parts.config.waitReplicas,
            timeoutMs: this.#parts.config.waitTimeoutMs,
          },
          onRead: this.#parts.silence === undefined
            ? undefined
            : () => this.#parts.silence!.heard(address),
        });
      } catch (error) {
        this.#parts.metrics.operation("CONNECT", (performance.now() - opening) / 1000, false);
        if (error instanceof NotPermittedError) {
          throw this.#notPermitted(address, choice.configEpoch, error);
        }
        throw error;
      }
      if (choice.confirm !== undefined) {
        const answer = await choice.confirm.answer.catch((error) => ({
          kind: "error" as const,
          error: String(error),
        }));
        if (answer.kind !== "master" || formatEndpoint(answer.primary) !== address) {
          // The announcer names another primary by now: ask all the sentinels.
          await Promise.all([session.hot.close(), session.durable.close()]);
          signal.throwIfAborted();
          this.#named = undefined;
          continue;
        }
        this.#named = {
          endpoint: choice.endpoint,
          configEpoch: answer.configEpoch,
          generation: this.#link.watching(),
          at: this.#parts.clock.now(),
          trustMs: this.#named?.trustMs ?? DEFAULT_TRUST_MS,
        };
        session = { ...session, primary: { ...session.primary, configEpoch: answer.configEpoch } };
      }
      const opened = performance.now();
      // Connecting and confirming the primary is an operation too (and the duration histogram
      // has a series from the first connect on).
      this.#parts.metrics.operation("CONNECT", (opened - opening) / 1000, true);
      logger.debug("Redis primary {primary} chosen in {chooseMs} ms, confirmed in {openMs} ms", {
        primary: address,
        chooseMs: Math.round((opening - choosing) * 10) / 10,
        openMs: Math.round((opened - opening) * 10) / 10,
      });
      return session;
    }
  }

  /** Sentinels that report another primary than the one chosen: an event and a warning each. */
  #reportStale(decision: MasterDecision): void {
    for (const stale of decision.stale) {
      const detail = {
        ...stale,
        chosen: formatEndpoint(decision.primary),
        chosenEpoch: decision.configEpoch,
      };
      this.#parts.emitter.emit("stale-sentinel", detail);
      // Normal for a second or so after a failover, until every sentinel has heard of it.
      logger.info(
        "Sentinel {sentinel} reports {reported} (epoch {configEpoch}); using {chosen} (epoch {chosenEpoch})",
        detail,
      );
    }
  }

  /**
   * The primary the sentinels name is outside this process's network
   * permission. The failover still happened, so it is reported once (the
   * `failover` event and one error line); every command then fails at once
   * with a {@link NotPermittedError} that names the address and the flag.
   */
  #notPermitted(
    address: string,
    configEpoch: number | undefined,
    error: NotPermittedError,
  ): NotPermittedError {
    const role = this.#parts.resolver === undefined
      ? "MN_REDIS_URL"
      : "the primary the sentinels name";
    const typed = new NotPermittedError(address, { role, cause: error.cause });
    if (this.#unpermitted === address) return typed;
    this.#unpermitted = address;
    const previous = this.#link.lastPrimary()?.address;
    if (previous !== undefined && previous !== address) {
      // A failover to a node this process may not reach: its commands fail from now on.
      const detail = { from: previous, to: address, configEpoch };
      this.#parts.metrics.failover(this.#link.retiredBy(), { ...detail, replid: "" });
      this.#parts.emitter.emit("failover", detail);
      logger.error("{message}", { message: typed.message });
    }
    return typed;
  }

  /** The longest the reconnect loop will wait before its next attempt. */
  longestNextDelayMs(): number {
    return backoffDelayMs(this.#failures, {
      backoffMs: this.#parts.config.reconnectBackoffMs,
      maxBackoffMs: this.#parts.config.reconnectMaxBackoffMs,
      random: () => 1,
    });
  }
}
