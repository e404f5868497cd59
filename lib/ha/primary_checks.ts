/**
 * Whether the session in service still talks to the primary: the active
 * probe (`ROLE` on a timer, which also finds a primary that hangs without
 * closing its socket), the re-check after a `WAIT` shortfall (`ROLE`, and the
 * sentinels at most once a second, less often while they keep naming the
 * same primary and their events are heard), and
 * Sentinel's pub/sub events as hints. Each finding goes to
 * the {@link PrimaryLink}, which retires the session or wakes its reconnect
 * loop.
 *
 * @module
 */

import type { Clock } from "../common/clock.ts";
import { ConnectionError, ReplyError } from "../common/errors.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { parseRole } from "../protocol/role.ts";
import { libraryLogger } from "../common/log.ts";
import type { Session } from "./_session.ts";
import type { FailoverSource } from "./client_metrics.ts";
import type { HaEventEmitter } from "./events.ts";
import { isAuthReply } from "./failures.ts";
import { eventInstanceAddress, parseSwitchMaster } from "./resolver_decision.ts";
import type { SentinelResolver } from "./sentinel_resolver.ts";
import type { SentinelEvent } from "./sentinel_watcher.ts";

const logger = libraryLogger("client");

/** What the checks act on: the link's session in service and its verdicts. */
export interface CheckedLink {
  /** The session in service, if any. */
  current(): Session | undefined;
  /** Aborted once the link is closing. */
  readonly closing: AbortSignal;
  /** The node is no longer the primary: retire the session, wake the reconnect loop. */
  replaced(session: Session, why: string, source: FailoverSource): void;
  /** The session broke (hung, closed): retire it and count the failure. */
  failed(session: Session, error: unknown): void;
  /** Sentinel announced a change: cut the reconnect loop's backoff short. */
  wake(): void;
  /** A sentinel reported `address` down: its acknowledgements wait for the sentinels' word. */
  doubted(address: string, why: string): void;
  /** Sentinel `sentinel` (`host:port`) announced a switch to `target`. */
  switched(target: Endpoint, sentinel: string): void;
  /** A sentinel was added: the resolver asks for the peers again. */
  peersChanged(): void;
  /** The latest `+switch-master` target, if any was announced. */
  switchTarget(): string | undefined;
  /** The watcher's generation while it is subscribed to a majority (see `LoopLink.watching`). */
  watching(): number | undefined;
}

/**
 * How long the sentinels' naming of a primary answers later re-checks of
 * it, while the watcher stays subscribed to a majority (a switch would be
 * announced): first a second, doubling each time they name the same primary
 * again, up to 16 s. A run of `WAIT` shortfalls (a primary left without a
 * replica for a while) asks them a handful of times, not once per write of
 * every client.
 */
const SENTINELS_ANSWER_MS = { first: 1000, max: 16_000 } as const;

/** What the checks need besides the link. */
export interface PrimaryChecksOptions {
  /** `sentinel` refuses any role but master; `single` only probes that the node answers. */
  haMode: "single" | "sentinel";
  /** The resolver (sentinel mode), for the re-check. */
  resolver: SentinelResolver | undefined;
  /** The client's events (`probe-failed`, `sentinel-event`). */
  emitter: HaEventEmitter;
  /** The clock the probe waits on. */
  clock: Clock;
  /** Probe period. */
  intervalMs: number;
  /** How long `ROLE` may take. */
  timeoutMs: number;
  /** The silence guard's threshold, when known: the probe runs at least twice per threshold. */
  silenceThresholdMs: () => number | undefined;
}

/** The probe, the re-check and the Sentinel hints of one link. */
export class PrimaryChecks {
  readonly #link: CheckedLink;
  readonly #options: PrimaryChecksOptions;
  readonly #reverifying = new WeakMap<Session, Promise<boolean>>();
  /**
   * The last re-check the sentinels answered: the primary they named, when,
   * under which generation, and for how long it answers the next ones.
   */
  #named: { address: string; at: number; generation: number; forMs: number } | undefined;

  /** Binds the checks to `link`; the probe starts with {@link PrimaryChecks.probe}. */
  constructor(link: CheckedLink, options: PrimaryChecksOptions) {
    this.#link = link;
    this.#options = options;
  }

  /**
   * Re-checks that `session` still talks to the primary (ROLE, and in
   * sentinel mode what the sentinels name). Retires it when not; returns
   * whether it was retired. Concurrent callers share one check.
   */
  reverify(session: Session): Promise<boolean> {
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
    const { timeoutMs, resolver } = this.#options;
    const closing = this.#link.closing;
    try {
      const reply = await session.hot.send(["ROLE"], { timeoutMs, signal: closing });
      const { role } = parseRole(reply);
      if (this.#options.haMode === "sentinel" && role !== "master") {
        this.#link.replaced(session, `ROLE reports ${role}`, "role_mismatch");
        return true;
      }
      if (resolver !== undefined && !this.#recentlyNamed(session.primary.address)) {
        const generation = this.#link.watching();
        const decision = await resolver.resolve({
          signal: AbortSignal.any([closing, AbortSignal.timeout(timeoutMs)]),
        });
        const named = formatEndpoint(decision.primary);
        const again = this.#named?.address === named;
        this.#named = generation === undefined ? undefined : {
          address: named,
          at: this.#options.clock.now(),
          generation,
          forMs: again
            ? Math.min(this.#named!.forMs * 2, SENTINELS_ANSWER_MS.max)
            : SENTINELS_ANSWER_MS.first,
        };
        if (named !== session.primary.address) {
          this.#link.replaced(session, `the sentinels now name ${named}`, "probe");
          return true;
        }
      }
      return session.retired;
    } catch (error) {
      if (closing.aborted) return true;
      this.#link.failed(session, error);
      return true;
    }
  }

  /** Whether the sentinels named `address` recently enough (see `SENTINELS_ANSWER_MS`), no event missed since. */
  #recentlyNamed(address: string): boolean {
    const named = this.#named;
    return named !== undefined && named.address === address &&
      named.generation === this.#link.watching() &&
      this.#options.clock.now() - named.at < named.forMs;
  }

  /**
   * A Sentinel event about the master: a switch retires a session on another
   * node and sends the reconnect loop to the new primary (once per switch,
   * however many sentinels announce it); a conversion of ours retires it;
   * `-odown` (the primary is reachable again) ends a backoff; a new sentinel
   * is asked for its peers; `+odown` of ours puts its acknowledgements in
   * doubt until the sentinels confirm it. Other events change nothing: they do not say
   * where the primary is, and hundreds of clients reacting to each would
   * only load the sentinels.
   */
  onSentinelEvent(event: SentinelEvent): void {
    this.#options.emitter.emit("sentinel-event", event);
    logger.debug("Sentinel {sentinel} published {channel} {payload}", { ...event });
    const current = this.#link.current();
    switch (event.channel) {
      case "+switch-master": {
        const target = parseSwitchMaster(event.payload)?.to;
        if (target === undefined) return;
        this.#link.switched(target, event.sentinel);
        if (current !== undefined && current.primary.address !== formatEndpoint(target)) {
          this.#link.replaced(
            current,
            `+switch-master to ${formatEndpoint(target)}`,
            "sentinel_event",
          );
        }
        return;
      }
      case "+convert-to-slave":
        if (
          current !== undefined && eventInstanceAddress(event.payload) === current.primary.address
        ) {
          this.#link.replaced(current, "Sentinel converted it to a replica", "sentinel_event");
        }
        return;
      case "+odown": {
        // A failover of it may start at once; a second, spurious one can promote another node
        // while this one keeps a replica that passes WAIT.
        const address = eventInstanceAddress(event.payload);
        if (address !== undefined && address === current?.primary.address) {
          this.#link.doubted(address, `was reported down by sentinel ${event.sentinel} (+odown)`);
        }
        return;
      }
      case "-odown":
        this.#link.wake();
        return;
      case "+sentinel":
        this.#link.peersChanged();
        return;
    }
  }

  /** The active probe, until the link closes: `ROLE` on the session in service. */
  async probe(): Promise<void> {
    const { intervalMs, timeoutMs, clock } = this.#options;
    const closing = this.#link.closing;
    while (!closing.aborted) {
      // At least twice per silence threshold, so a healthy idle primary never looks silent.
      const thresholdMs = this.#options.silenceThresholdMs();
      try {
        await clock.sleep(
          thresholdMs === undefined ? intervalMs : Math.min(intervalMs, thresholdMs / 2),
          closing,
        );
      } catch {
        return;
      }
      const session = this.#link.current();
      if (session === undefined || session.retired) continue;
      try {
        const reply = await session.hot.send(["ROLE"], { timeoutMs, signal: closing });
        const { role } = parseRole(reply);
        if (this.#options.haMode === "sentinel" && role !== "master") {
          this.#probeFailed(session, `ROLE reports ${role}`, false);
        }
      } catch (error) {
        if (closing.aborted) return;
        if (error instanceof ReplyError && isAuthReply(error)) continue;
        this.#probeFailed(session, error instanceof Error ? error.message : String(error), true);
      }
    }
  }

  #probeFailed(session: Session, error: string, broken: boolean): void {
    if (session.retired) return;
    this.#options.emitter.emit("probe-failed", { primary: session.primary.address, error });
    if (broken) {
      // Hung or unreachable: close it now, so in-flight commands are retried or reported.
      this.#link.failed(
        session,
        new ConnectionError(`probe failed: ${error}`, { endpoint: session.primary.address }),
      );
      this.#link.wake();
    } else {
      this.#link.replaced(session, `its probe found ${error}`, "probe");
    }
  }
}
