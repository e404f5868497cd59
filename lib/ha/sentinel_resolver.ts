/**
 * Asks sentinels who the primary is: in parallel, with a short per-sentinel
 * timeout, waiting for a majority, and choosing by `config-epoch` (see
 * {@link decideMaster}). Keeps the seed list forever and adds sentinels it
 * learns from `SENTINEL SENTINELS`.
 *
 * One connection per sentinel is kept open and reused by every resolution,
 * and a resolution costs each sentinel one command (`SENTINEL MASTER`; a
 * second, `GET-MASTER-ADDR-BY-NAME`, only while a failover is in progress),
 * so hundreds of clients resolving at once after a switch open no new
 * connection. A
 * connection that fails or misses a deadline is closed and opened anew at
 * the next resolution. The peers are asked for (`SENTINEL SENTINELS`) on the
 * first resolution, when told of a new sentinel, and every five minutes.
 *
 * @module
 */

import { abortable } from "../common/abortable.ts";
import { RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint, parseEndpoint } from "../protocol/endpoint.ts";
import { AclDeniedError } from "../common/reply_errors.ts";
import { AuthError, NotPermittedError, ReplyError, TlsError } from "../common/errors.ts";
import {
  decideMaster,
  hasEnoughAnswers,
  instanceEndpoint,
  type MasterDecision,
  type SentinelAnswer,
} from "./resolver_decision.ts";
import { replyToMap, replyToNumber, replyToString, type RespReply } from "../protocol/resp.ts";
import type { Secret } from "../common/secret.ts";

/** Options for {@link SentinelResolver}. */
export interface SentinelResolverOptions {
  /** Seed sentinels (`MN_REDIS_SENTINELS`). */
  sentinels: readonly Endpoint[];
  /** Master name (`MN_REDIS_SENTINEL_MASTER`). */
  masterName: string;
  /** Sentinel ACL user (`MN_REDIS_SENTINEL_USERNAME`). */
  username?: string | undefined;
  /** Sentinel password (`MN_REDIS_SENTINEL_PASSWORD`). */
  password?: Secret | undefined;
  /** Reach sentinels over TLS. @default {false} */
  tls?: boolean | undefined;
  /** Extra CA certificates (PEM) trusted for TLS. */
  caCerts?: readonly string[] | undefined;
  /** Per-sentinel deadline for connect plus answer. @default {500} */
  perSentinelTimeoutMs?: number | undefined;
  /** Told of every connection opened to a sentinel and every command sent (for metrics). */
  observer?: SentinelObserver | undefined;
}

/** What a resolver or watcher reports about its traffic to the sentinels. */
export interface SentinelObserver {
  /** A connection to a sentinel was opened. */
  connected(): void;
  /** `count` commands were sent to sentinels. */
  sent(count: number): void;
}

/** How often the sentinels are asked for their peers, when nothing says sooner. */
const PEERS_REFRESH_MS = 5 * 60_000;

/** Resolves the current primary from sentinels. Dispose it to wait for stray queries. */
export class SentinelResolver implements AsyncDisposable {
  readonly #options: SentinelResolverOptions;
  readonly #seeds: readonly Endpoint[];
  readonly #discovered = new Map<string, Endpoint>();
  readonly #stray = new Set<Promise<unknown>>();
  readonly #closing = new AbortController();
  /** One open connection per sentinel (`host:port`), reused by every resolution. */
  readonly #connections = new Map<string, Promise<RedisConnection>>();
  /** When the peers were last asked for (`performance.now()`); undefined: ask next time. */
  #peersAskedAt: number | undefined;

  /** Creates a resolver; it opens connections only while resolving. */
  constructor(options: SentinelResolverOptions) {
    if (options.sentinels.length === 0) {
      throw new RangeError("SentinelResolver needs at least one sentinel");
    }
    this.#options = options;
    this.#seeds = [...options.sentinels];
  }

  /**
   * Asks one sentinel (`host:port`, as events name it) what it reports, on
   * its open connection. An address it does not know is parsed and asked
   * all the same.
   */
  async ask(
    sentinel: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<SentinelAnswer> {
    options.signal?.throwIfAborted();
    const endpoint = this.sentinels.find((s) => formatEndpoint(s) === sentinel) ??
      parseEndpoint(sentinel);
    if (typeof endpoint === "string") {
      return { sentinel, kind: "error", error: endpoint };
    }
    const query = this.#ask(endpoint);
    this.#stray.add(query);
    void query.finally(() => this.#stray.delete(query));
    return await abortable(query, options.signal);
  }

  /** Asks for the peers (`SENTINEL SENTINELS`) at the next resolution: a new sentinel was seen. */
  refreshPeers(): void {
    this.#peersAskedAt = undefined;
  }

  /** Every sentinel it asks: the seeds, then the discovered ones. */
  get sentinels(): Endpoint[] {
    const seen = new Set(this.#seeds.map(formatEndpoint));
    return [
      ...this.#seeds,
      ...[...this.#discovered.values()].filter((e) => !seen.has(formatEndpoint(e))),
    ];
  }

  /**
   * Asks every known sentinel in parallel and decides once a majority
   * answered (or every query settled; with `waitAll`, once every query
   * settled, for status output). Throws the typed errors of
   * {@link decideMaster}.
   *
   * @example
   * ```ts
   * import { SentinelResolver } from "./sentinel_resolver.ts";
   * import { parseConfig } from "./config.ts";
   * // MN_REDIS_SENTINELS=127.0.0.1:26379 MN_REDIS_SENTINEL_MASTER=mirror-neuron
   * const config = parseConfig((name) => Deno.env.get(name));
   * await using resolver = new SentinelResolver({
   *   sentinels: config.sentinels,
   *   masterName: config.sentinelMaster!,
   * });
   * const { primary, configEpoch } = await resolver.resolve();
   * console.log(`primary ${primary.host}:${primary.port}, config-epoch ${configEpoch}`);
   * ```
   */
  async resolve(
    options: { waitAll?: boolean | undefined; signal?: AbortSignal | undefined } = {},
  ): Promise<MasterDecision> {
    options.signal?.throwIfAborted();
    const targets = this.sentinels;
    const answers: SentinelAnswer[] = [];
    let answered = 0;
    let settled = 0;
    const { promise: enough, resolve: done } = Promise.withResolvers<void>();
    for (const sentinel of targets) {
      const query = this.#ask(sentinel).then((answer) => {
        settled++;
        if (answer.kind !== "error") answered++;
        answers.push(answer);
        if (
          options.waitAll === true
            ? settled === targets.length
            : hasEnoughAnswers(targets.length, answered, settled)
        ) {
          done();
        }
      });
      this.#stray.add(query);
      void query.finally(() => this.#stray.delete(query));
    }
    await abortable(enough, options.signal);
    // Answers that arrive later are ignored; their queries finish on their own deadline.
    const snapshot = [...answers];
    // Report sentinels that were still pending as errors, for status output.
    for (const s of targets) {
      const name = formatEndpoint(s);
      if (!snapshot.some((a) => a.sentinel === name)) {
        snapshot.push({
          sentinel: name,
          kind: "error",
          error: "no answer before a majority decided",
        });
      }
    }
    return decideMaster(snapshot, this.#options.masterName);
  }

  /**
   * Asks every known sentinel for the master's replicas (`SENTINEL
   * REPLICAS`) in parallel on the kept connections, and returns once a
   * majority answered (or every query settled): each answering sentinel's
   * reply, by `host:port`. Sentinels that fail are left out.
   */
  async replicas(
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<Map<string, RespReply>> {
    options.signal?.throwIfAborted();
    const targets = this.sentinels;
    const replies = new Map<string, RespReply>();
    let settled = 0;
    const { promise: enough, resolve: done } = Promise.withResolvers<void>();
    const timeoutMs = this.#options.perSentinelTimeoutMs ?? 500;
    for (const sentinel of targets) {
      const name = formatEndpoint(sentinel);
      const query = (async () => {
        let conn: RedisConnection | undefined;
        try {
          conn = await this.#connection(sentinel, name, timeoutMs);
          this.#options.observer?.sent(1);
          const reply = await conn.send(["SENTINEL", "REPLICAS", this.#options.masterName], {
            timeoutMs,
            signal: this.#closing.signal,
          });
          if (Array.isArray(reply)) replies.set(name, reply);
        } catch (error) {
          if (!(error instanceof ReplyError) && conn !== undefined) {
            void conn.close();
            this.#connections.delete(name);
          }
        } finally {
          settled++;
          if (hasEnoughAnswers(targets.length, replies.size, settled)) done();
        }
      })();
      this.#stray.add(query);
      void query.finally(() => this.#stray.delete(query));
    }
    await abortable(enough, options.signal);
    return new Map(replies);
  }

  /** The open connection to `sentinel`, opened if there is none. */
  #connection(sentinel: Endpoint, name: string, timeoutMs: number): Promise<RedisConnection> {
    const open = this.#connections.get(name);
    if (open !== undefined) {
      return open.then((conn) => conn.closed ? this.#reopen(sentinel, name, timeoutMs) : conn);
    }
    return this.#reopen(sentinel, name, timeoutMs);
  }

  #reopen(sentinel: Endpoint, name: string, timeoutMs: number): Promise<RedisConnection> {
    const connecting = RedisConnection.connect(sentinel, {
      tls: this.#options.tls,
      caCerts: this.#options.caCerts,
      username: this.#options.username,
      password: this.#options.password,
      connectTimeoutMs: timeoutMs,
      credentialVariables: "MN_REDIS_SENTINEL_USERNAME/MN_REDIS_SENTINEL_PASSWORD",
      tlsVariable: "MN_REDIS_SENTINEL_TLS",
      signal: this.#closing.signal,
    });
    this.#options.observer?.connected();
    this.#connections.set(name, connecting);
    connecting.catch(() => {
      if (this.#connections.get(name) === connecting) this.#connections.delete(name);
    });
    return connecting;
  }

  async #ask(sentinel: Endpoint): Promise<SentinelAnswer> {
    const name = formatEndpoint(sentinel);
    const timeoutMs = this.#options.perSentinelTimeoutMs ?? 500;
    const started = performance.now();
    let conn: RedisConnection | undefined;
    try {
      conn = await this.#connection(sentinel, name, timeoutMs);
      const sendOptions = {
        timeoutMs: Math.max(1, Math.round(timeoutMs - (performance.now() - started))),
        signal: this.#closing.signal,
      };
      const masterReply = conn.send(["SENTINEL", "MASTER", this.#options.masterName], sendOptions);
      const askPeers = this.#peersAskedAt === undefined ||
        performance.now() - this.#peersAskedAt > PEERS_REFRESH_MS;
      const peersReply = askPeers
        ? conn.send(["SENTINEL", "SENTINELS", this.#options.masterName], sendOptions)
        : Promise.resolve(null);
      this.#options.observer?.sent(askPeers ? 2 : 1);
      const [master, peers] = await Promise.allSettled([masterReply, peersReply]);
      if (master.status === "rejected") throw master.reason;
      if (peers.status === "fulfilled" && Array.isArray(peers.value)) {
        this.#learn(peers.value);
        this.#peersAskedAt = performance.now();
      }
      const fields = replyToMap(master.value);
      const host = replyToString(fields.get("ip") ?? null);
      const port = Number(replyToString(fields.get("port") ?? null));
      if (host === null || !Number.isInteger(port)) {
        return { sentinel: name, kind: "error", error: "SENTINEL MASTER reply has no ip/port" };
      }
      let primary = { host, port };
      let flags = (replyToString(fields.get("flags") ?? null) ?? "").split(",");
      if (flags.includes("failover_in_progress")) {
        // Mid-failover, GET-MASTER-ADDR-BY-NAME already names the promoted replica (SENTINEL
        // MASTER still names the old primary until the switch): a second command, only then.
        this.#options.observer?.sent(1);
        const addr = await conn.send(
          ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", this.#options.masterName],
          sendOptions,
        );
        if (Array.isArray(addr) && addr.length === 2) {
          const promoted = {
            host: replyToString(addr[0]) ?? host,
            port: Number(replyToString(addr[1])),
          };
          if (
            Number.isInteger(promoted.port) && formatEndpoint(promoted) !== formatEndpoint(primary)
          ) {
            // The flags describe the old primary, not the promoted one.
            primary = promoted;
            flags = ["master", "promoted"];
          }
        }
      }
      const downAfterMs = Number(replyToString(fields.get("down-after-milliseconds") ?? null));
      return {
        sentinel: name,
        kind: "master",
        primary,
        configEpoch: replyToNumber(fields.get("config-epoch") ?? 0),
        flags,
        downAfterMs: Number.isFinite(downAfterMs) && downAfterMs > 0 ? downAfterMs : undefined,
      };
    } catch (error) {
      // A connection that failed or missed its deadline is not reused: the next resolution opens
      // a fresh one (a hung sentinel's replies would otherwise pile up behind it).
      if (!(error instanceof ReplyError) && conn !== undefined) {
        void conn.close();
        if (this.#connections.get(name) !== undefined) this.#connections.delete(name);
      }
      if (error instanceof ReplyError && /No such master/i.test(error.reply)) {
        return { sentinel: name, kind: "unknown-master" };
      }
      if (error instanceof AclDeniedError) {
        return {
          sentinel: name,
          kind: "error",
          error: `permission denied (${error.reply}); the sentinel's ACL user ` +
            "(MN_REDIS_SENTINEL_USERNAME) must be allowed the SENTINEL commands",
          permanent: true,
        };
      }
      if (error instanceof NotPermittedError) {
        return {
          sentinel: name,
          kind: "error",
          error: `not permitted by this process's network permission; grant ${error.flag}`,
          permanent: true,
        };
      }
      if (error instanceof ReplyError && /^(WRONGPASS|NOAUTH)$/.test(error.prefix)) {
        return {
          sentinel: name,
          kind: "error",
          error:
            `authentication refused (${error.prefix}); check MN_REDIS_SENTINEL_USERNAME/MN_REDIS_SENTINEL_PASSWORD`,
          permanent: true,
        };
      }
      if (error instanceof AuthError || error instanceof TlsError) {
        return { sentinel: name, kind: "error", error: error.message, permanent: true };
      }
      if (error instanceof ReplyError && /unknown command .?sentinel/i.test(error.reply)) {
        return {
          sentinel: name,
          kind: "error",
          error: `not a sentinel (it replied "${error.reply}"); MN_REDIS_SENTINELS must list ` +
            "redis-sentinel ports (26379 by default), not Redis ports",
          permanent: true,
        };
      }
      return {
        sentinel: name,
        kind: "error",
        error: error instanceof Error ? error.message : String(error),
      };
    }
  }

  #learn(peers: unknown[]): void {
    for (const peer of peers) {
      if (!Array.isArray(peer)) continue;
      const endpoint = instanceEndpoint(replyToMap(peer));
      if (endpoint === undefined) continue;
      this.#discovered.set(formatEndpoint(endpoint), endpoint);
    }
  }

  /** Ends queries still running after a decision, waits for them, closes the connections. Idempotent. */
  async close(): Promise<void> {
    this.#closing.abort();
    while (this.#stray.size > 0) await Promise.allSettled([...this.#stray]);
    const open = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(open.map((c) => c.then((conn) => conn.close(), () => {})));
  }

  /** Same as {@link SentinelResolver.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
