/**
 * The replicas a client may read from, followed from Sentinel: listed with
 * `SENTINEL REPLICAS` on first use, listed again when Sentinel announces a
 * change (`+slave`, `+sdown`/`-sdown` of a replica, `+switch-master`,
 * `+convert-to-slave`, `+slave-reconf-done`), when a replica fails, and every
 * 30 s while reads use them. One connection per replica, opened on its first
 * read and closed when the replica leaves the list or fails.
 *
 * The list is a list of candidates only: every read proves on the replica
 * itself (`ROLE`, see `read_freshness.ts`) that it follows the primary and is
 * recent enough. What Sentinel flags down (`s_down`, `o_down`,
 * `disconnected`, a replication link reported down; re-listed every 5 s while
 * one is) is not tried at all, and
 * a replica that failed a read is left alone for a while (1 s, doubling up to
 * 16 s).
 *
 * @module
 */

import { abortable } from "../common/abortable.ts";
import type { Clock } from "../common/clock.ts";
import { type ConnectOptions, RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { replyToMap, replyToString, type RespReply } from "../protocol/resp.ts";
import type { SentinelEvent } from "./sentinel_watcher.ts";
import { eventInstanceAddress, instanceEndpoint } from "./resolver_decision.ts";

/** A replica as the sentinels list it. */
export interface ListedReplica {
  /** Where it listens. */
  readonly endpoint: Endpoint;
  /** `host:port`. */
  readonly address: string;
  /** Why a sentinel says it cannot serve (flags, link status), or undefined when none does. */
  readonly down: string | undefined;
}

/** Flags of `SENTINEL REPLICAS` that mean the replica cannot serve reads. */
const DOWN_FLAGS = ["s_down", "o_down", "disconnected"];

/**
 * Merges the sentinels' `SENTINEL REPLICAS` replies (by sentinel): every
 * replica any of them lists, down when any that lists it flags it down or
 * reports its replication link down. `primary` (`host:port`) is left out:
 * mid-failover a sentinel may still list the promoted node as a replica.
 */
export function mergeReplicaLists(
  replies: ReadonlyMap<string, RespReply>,
  primary: string | undefined,
): ListedReplica[] {
  const merged = new Map<string, { endpoint: Endpoint; down: string | undefined }>();
  for (const [sentinel, reply] of replies) {
    if (!Array.isArray(reply)) continue;
    for (const entry of reply) {
      if (!Array.isArray(entry)) continue;
      const fields = replyToMap(entry);
      const endpoint = instanceEndpoint(fields);
      if (endpoint === undefined) continue;
      const address = formatEndpoint(endpoint);
      if (address === primary) continue;
      const flags = (replyToString(fields.get("flags") ?? null) ?? "").split(",");
      const link = replyToString(fields.get("master-link-status") ?? null);
      const flagged = flags.filter((f) => DOWN_FLAGS.includes(f));
      const down = flagged.length > 0
        ? `sentinel ${sentinel} flags it ${flagged.join(",")}`
        : link !== null && link !== "ok"
        ? `sentinel ${sentinel} reports its replication link ${link}`
        : undefined;
      const known = merged.get(address);
      merged.set(address, { endpoint, down: known?.down ?? down });
    }
  }
  return [...merged].map(([address, { endpoint, down }]) => ({ address, endpoint, down }))
    .sort((a, b) => a.address.localeCompare(b.address));
}

/** One replica the client knows, with its connection and its backoff. */
export interface ReplicaEntry {
  /** Where it listens. */
  readonly endpoint: Endpoint;
  /** `host:port`. */
  readonly address: string;
  /** Why the sentinels say it cannot serve, or undefined. */
  down: string | undefined;
  /** Why a Sentinel event (`+sdown`) says it is down, until `-sdown`. */
  sdown: boolean;
  /** Its connection, once opened. */
  conn: Promise<RedisConnection> | undefined;
  /** Failed reads in a row (for the backoff). */
  failures: number;
  /** Not tried before this time (clock ms). */
  retryAt: number;
  /** Why it was last skipped, for errors and status. */
  lastProblem: string | undefined;
}

/** What {@link ReplicaSet} needs. */
export interface ReplicaSetOptions {
  /** Lists the replicas: every sentinel's `SENTINEL REPLICAS` reply. */
  list: (signal: AbortSignal) => Promise<ReadonlyMap<string, RespReply>>;
  /** The current primary's `host:port` (left out of the list), if known. */
  primary: () => string | undefined;
  /** Connection settings for a replica (those of the data nodes). */
  connectOptions: () => ConnectOptions;
  /** The client's clock. */
  clock: Clock;
  /** Aborted when the client closes. */
  closing: AbortSignal;
}

const RELIST_MS = 30_000;
const RELIST_DOWN_MS = 5_000;
const MIN_RELIST_GAP_MS = 250;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 16_000;

/** The replicas the client reads from. */
export class ReplicaSet {
  readonly #options: ReplicaSetOptions;
  readonly #entries = new Map<string, ReplicaEntry>();
  #listedAt = -Infinity;
  #listing: Promise<void> | undefined;
  #stale = true;
  #used = false;
  readonly #closers = new Set<Promise<unknown>>();

  /** Sets the set up; nothing is listed or opened until the first read. */
  constructor(options: ReplicaSetOptions) {
    this.#options = options;
  }

  /** Every replica known, listed or not usable. */
  get entries(): readonly ReplicaEntry[] {
    return [...this.#entries.values()];
  }

  /**
   * The replicas to try now (listed, not flagged down, not backing off),
   * listing them first when the list is stale. Rejects only when the
   * client closes; a listing that fails keeps the last list.
   */
  async candidates(signal: AbortSignal | undefined): Promise<ReplicaEntry[]> {
    this.#used = true;
    const now = this.#options.clock.now();
    // A replica flagged down may come back without an event (a new one shows "disconnected" until
    // Sentinel's first ping): re-list sooner while one is.
    const every = [...this.#entries.values()].some((e) => e.down !== undefined)
      ? RELIST_DOWN_MS
      : RELIST_MS;
    if (this.#stale || now - this.#listedAt > every) {
      const listing = this.#relist();
      // The first listing is awaited; later ones refresh the list in the background.
      if (this.#listedAt === -Infinity) await abortable(listing, signal);
    }
    const primary = this.#options.primary();
    const at = this.#options.clock.now();
    return [...this.#entries.values()].filter((e) =>
      e.address !== primary && e.down === undefined && !e.sdown && e.retryAt <= at
    );
  }

  /** A Sentinel event: a replica's `+sdown`/`-sdown` takes effect at once; others re-list. */
  onSentinelEvent(event: SentinelEvent): void {
    if (!this.#used) return;
    const kind = event.payload.trim().split(/\s+/)[0];
    if ((event.channel === "+sdown" || event.channel === "-sdown") && kind === "slave") {
      const entry = this.#entries.get(eventInstanceAddress(event.payload) ?? "");
      if (entry !== undefined) entry.sdown = event.channel === "+sdown";
    }
    if (
      ["+slave", "+sdown", "-sdown", "+switch-master", "+convert-to-slave", "+slave-reconf-done"]
        .includes(event.channel)
    ) {
      this.changed();
    }
  }

  /** The topology may have changed: re-list now (at most every 250 ms). */
  changed(): void {
    this.#stale = true;
    if (!this.#used || this.#options.closing.aborted) return;
    if (this.#options.clock.now() - this.#listedAt >= MIN_RELIST_GAP_MS) void this.#relist();
  }

  #relist(): Promise<void> {
    this.#listing ??= (async () => {
      try {
        const replies = await this.#options.list(this.#options.closing);
        if (replies.size === 0) return; // no sentinel answered: keep the last list
        this.#stale = false;
        this.#listedAt = this.#options.clock.now();
        const listed = mergeReplicaLists(replies, this.#options.primary());
        const keep = new Set(listed.map((r) => r.address));
        for (const [address, entry] of this.#entries) {
          if (!keep.has(address)) {
            this.#entries.delete(address);
            this.#drop(entry);
          }
        }
        for (const r of listed) {
          const entry = this.#entries.get(r.address);
          if (entry !== undefined) {
            entry.down = r.down;
            // Sentinel's own view replaces what an event said.
            entry.sdown = false;
          } else {
            this.#entries.set(r.address, {
              endpoint: r.endpoint,
              address: r.address,
              down: r.down,
              sdown: false,
              conn: undefined,
              failures: 0,
              retryAt: -Infinity,
              lastProblem: undefined,
            });
          }
        }
      } catch {
        // Sentinels unreachable: keep the last list; the next read tries again.
      } finally {
        this.#listing = undefined;
      }
    })();
    return this.#listing;
  }

  /** The entry's connection, opened on first use. */
  connection(entry: ReplicaEntry): Promise<RedisConnection> {
    const open = entry.conn;
    if (open !== undefined) {
      return open.then((conn) => conn.closed ? this.#open(entry) : conn);
    }
    return this.#open(entry);
  }

  #open(entry: ReplicaEntry): Promise<RedisConnection> {
    const connecting = RedisConnection.connect(entry.endpoint, this.#options.connectOptions());
    entry.conn = connecting;
    connecting.catch(() => {
      if (entry.conn === connecting) entry.conn = undefined;
    });
    return connecting;
  }

  /** A read on `entry` served: its backoff starts over. */
  served(entry: ReplicaEntry): void {
    entry.failures = 0;
    entry.lastProblem = undefined;
  }

  /**
   * A read on `entry` could not be proven or served: it is left alone for a
   * while. `broken` (no answer, a connection error) also closes its
   * connection and re-lists the replicas.
   */
  failed(entry: ReplicaEntry, problem: string, broken: boolean): void {
    entry.lastProblem = problem;
    entry.failures++;
    const backoff = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (entry.failures - 1));
    entry.retryAt = this.#options.clock.now() + backoff;
    if (broken) {
      this.#drop(entry);
      this.changed();
    }
  }

  /** A replica that is merely behind is tried again at the next read (no backoff). */
  lagging(entry: ReplicaEntry, problem: string): void {
    entry.lastProblem = problem;
  }

  /** Closes `entry`'s connection (in the background; {@link close} waits for it). */
  #drop(entry: ReplicaEntry): void {
    const conn = entry.conn;
    entry.conn = undefined;
    if (conn === undefined) return;
    const closing = conn.then((c) => c.close(), () => {});
    this.#closers.add(closing);
    void closing.finally(() => this.#closers.delete(closing));
  }

  /** Closes every replica connection. Idempotent. */
  async close(): Promise<void> {
    await this.#listing?.catch(() => {});
    for (const entry of this.#entries.values()) this.#drop(entry);
    this.#entries.clear();
    while (this.#closers.size > 0) await Promise.all([...this.#closers]);
  }
}
