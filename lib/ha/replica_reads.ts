/**
 * Where a read goes, per `MN_REDIS_READ_FROM` or the call's `readFrom`:
 * the primary, or a replica that proves in the same round trip that it is
 * recent enough (see `read_freshness.ts` for the proof, `replica_set.ts` for
 * the replicas). Writes never come here.
 *
 * A replica read is one pipeline on the replica: `ROLE`, then the read.
 * It is accepted when `ROLE` says the replica follows the client's current
 * primary, its link is `connected`, and its applied offset is at least a
 * primary offset sampled after the client's last completed write and no
 * more than `maxLagMs` before the read was issued. Anything else (lagging,
 * link down, following another node, promoted, no answer within
 * `replicaTimeoutMs`, a connection error, `LOADING`, `MASTERDOWN`) skips
 * that replica: the next is tried, then the primary (`replica-preferred`)
 * or a {@link NoReplicaError} (`replica`).
 *
 * @module
 */

import type { Clock } from "../common/clock.ts";
import type { Config, ReadFrom } from "./config.ts";
import { AbortedError, ReplyError } from "../common/errors.ts";
import {
  NoReplicaError,
  type NoReplicaReason,
  type ReplicaProblem,
} from "../common/read_errors.ts";
import { ValidationError } from "../common/state_errors.ts";
import type { ClientMetrics } from "./client_metrics.ts";
import type { CommandOptions } from "./client_options.ts";
import type { Session } from "./_session.ts";
import type { PrimaryLink } from "./primary_link.ts";
import { ReadFreshness, type ReadNeed } from "./read_freshness.ts";
import type { ReplicaEntry, ReplicaSet } from "./replica_set.ts";
import type { RedisConnection } from "../protocol/connection.ts";
import type { RespArg, RespReply } from "../protocol/resp.ts";
import { parseRole } from "../protocol/role.ts";

/** Options of one read: those of a command, plus where it may be served from. */
export interface ReadOptions extends CommandOptions {
  /** Overrides `MN_REDIS_READ_FROM` for this read. */
  readFrom?: ReadFrom | undefined;
  /** Overrides `MN_REDIS_READ_MAX_LAG_MS` for this read (0 or more). */
  maxLagMs?: number | undefined;
}

/** A read's reply and the node that served it. */
export interface ServedRead {
  /** The reply. */
  readonly reply: RespReply;
  /** `replica` or `primary`. */
  readonly servedBy: "replica" | "primary";
  /** The node that served it, `host:port`. */
  readonly node: string;
  /**
   * Why the primary served a read that could have gone to a replica (none
   * listed, each replica's problem); undefined otherwise.
   */
  readonly fallback?: string | undefined;
}

/** A read, given how to send its commands (one, or a script with its `NOSCRIPT` fallback). */
export type ReadRun = (
  send: (args: readonly RespArg[]) => Promise<RespReply>,
) => Promise<RespReply>;

/**
 * Several reads that must see one state, not older along the way (a job
 * page and its jobs, a bundle's metadata and its chunks): the first read
 * pins the node, the others read there after it. A pinned replica that can
 * no longer show it is at least where it was throws {@link ScopeLostError};
 * the caller starts over on the primary.
 */
export class ReadScope {
  /** Where the first read was served, once it was. */
  pinned:
    | { kind: "primary" }
    | {
      kind: "replica";
      entry: ReplicaEntry;
      conn: RedisConnection;
      primary: string;
      offset: number;
    }
    | undefined;
}

/** A pinned replica moved away (resynced, lost its link, failed): redo the reads on the primary. */
export class ScopeLostError extends Error {
  /** Error class name. */
  override readonly name = "ScopeLostError";
}

/** Commands a replica may serve through {@link ReplicaReads}: read-only ones. */
const READ_ONLY = new Set([
  "BITCOUNT",
  "BITPOS",
  "DBSIZE",
  "DUMP",
  "EVALSHA_RO",
  "EVAL_RO",
  "EXISTS",
  "FCALL_RO",
  "GET",
  "GETBIT",
  "GETRANGE",
  "HEXISTS",
  "HGET",
  "HGETALL",
  "HKEYS",
  "HLEN",
  "HMGET",
  "HRANDFIELD",
  "HSCAN",
  "HSTRLEN",
  "HVALS",
  "KEYS",
  "LCS",
  "LINDEX",
  "LLEN",
  "LPOS",
  "LRANGE",
  "MGET",
  "PTTL",
  "SCAN",
  "SCARD",
  "SDIFF",
  "SINTER",
  "SINTERCARD",
  "SISMEMBER",
  "SMEMBERS",
  "SMISMEMBER",
  "SRANDMEMBER",
  "SSCAN",
  "STRLEN",
  "SUNION",
  "TTL",
  "TYPE",
  "XINFO",
  "XLEN",
  "XPENDING",
  "XRANGE",
  "XREVRANGE",
  "ZCARD",
  "ZCOUNT",
  "ZDIFF",
  "ZINTER",
  "ZINTERCARD",
  "ZLEXCOUNT",
  "ZMSCORE",
  "ZRANDMEMBER",
  "ZRANGE",
  "ZRANGEBYLEX",
  "ZRANGEBYSCORE",
  "ZRANK",
  "ZREVRANGE",
  "ZREVRANGEBYLEX",
  "ZREVRANGEBYSCORE",
  "ZREVRANK",
  "ZSCAN",
  "ZSCORE",
  "ZUNION",
]);

/** Throws {@link ValidationError} unless `args` is a read-only command. */
export function checkReadOnly(args: readonly RespArg[]): void {
  const name = typeof args[0] === "string" ? args[0].toUpperCase() : "";
  if (READ_ONLY.has(name)) return;
  throw new ValidationError(
    "read command",
    `${
      name === "" ? "a command with no name" : name
    } is not a read-only command; read() runs reads (GET, HGETALL, XRANGE, ZRANGE, …), ` +
      "send writes with command() or durable()",
  );
}

/** Replica replies that mean "not now" (the replica cannot serve), not an answer. */
const NOT_NOW = new Set(["LOADING", "MASTERDOWN", "BUSY", "TRYAGAIN"]);

/** What {@link ReplicaReads} needs of the client. */
export interface ReplicaReadsParts {
  /** The configuration in force (policy, bound, mode). */
  readonly config: Config;
  /** The link to the primary. */
  readonly link: PrimaryLink;
  /** The replicas (sentinel mode), or undefined (single mode: none known). */
  readonly replicas: ReplicaSet | undefined;
  /** The client's metrics. */
  readonly metrics: ClientMetrics;
  /** The client's clock. */
  readonly clock: Clock;
  /** Deadline of a replica's answer (then the next is tried). */
  readonly replicaTimeoutMs: number;
  /** Deadline of the primary's `ROLE` for an offset sample. */
  readonly sampleTimeoutMs: number;
  /** Runs `run` on the primary with the client's retry policy; resolves with the node too. */
  readonly primaryRead: (
    run: ReadRun,
    options: CommandOptions,
  ) => Promise<{ reply: RespReply; node: string }>;
}

/** Routes reads: primary or a replica, with the freshness proof. */
export class ReplicaReads {
  readonly #parts: ReplicaReadsParts;
  readonly #freshness = new ReadFreshness<Session>();
  /** The `ROLE` queued this turn, per replica connection (see {@link ReplicaReads.#role}). */
  readonly #roles = new Map<RedisConnection, Promise<RespReply>>();
  #next = 0;

  /** Sets the router up; nothing is opened until a read asks for a replica. */
  constructor(parts: ReplicaReadsParts) {
    this.#parts = parts;
  }

  /** A write completed (or may have been applied): reads after it must see it. */
  wrote(): void {
    this.#freshness.wrote();
  }

  /** Runs a read per its policy; see the module docs. */
  async read(run: ReadRun, options: ReadOptions, scope?: ReadScope): Promise<ServedRead> {
    const started = performance.now();
    const served = await this.#route(run, options, scope);
    // The primary's reads are timed by the client's retry path; a replica's here.
    if (served.servedBy === "replica") {
      this.#parts.metrics.operation("READ", (performance.now() - started) / 1000, true);
    }
    return served;
  }

  async #route(run: ReadRun, options: ReadOptions, scope?: ReadScope): Promise<ServedRead> {
    const { config } = this.#parts;
    const policy = options.readFrom ?? config.readFrom;
    const maxLagMs = options.maxLagMs ?? config.readMaxLagMs;
    if (!Number.isFinite(maxLagMs) || maxLagMs < 0) {
      throw new ValidationError("maxLagMs", `${maxLagMs} is not a lag bound (0 or more ms)`);
    }
    const pinned = scope?.pinned;
    if (pinned?.kind === "replica") return await this.#onPinned(run, options, pinned);
    if (policy === "primary" || pinned?.kind === "primary") {
      return await this.#primary(run, options, scope, undefined);
    }
    const replicas = this.#parts.replicas;
    if (replicas === undefined) {
      const why = "single mode (MN_REDIS_HA_MODE=single) knows no replicas";
      if (policy === "replica") throw new NoReplicaError("none-listed", [], why);
      return await this.#primary(run, options, scope, why);
    }
    const signal = options.signal;
    let session = this.#parts.link.current;
    if (session === undefined) {
      // A failover is in progress: the freshness proof needs the primary, so wait for it.
      if (policy === "replica-preferred") {
        return await this.#primary(run, options, scope, "no primary in service");
      }
      session = await this.#parts.link.session(
        signal === undefined
          ? this.#parts.link.closing
          : AbortSignal.any([signal, this.#parts.link.closing]),
      );
    }
    const need: ReadNeed<Session> = {
      issuedAt: this.#parts.clock.now(),
      mark: this.#freshness.mark,
      maxLagMs,
      session,
    };
    const candidates = await replicas.candidates(signal);
    // Why the others are not tried: only worked out when no replica serves (the rare path).
    const skipped = (): ReplicaProblem[] =>
      replicas.entries
        .filter((e) => !candidates.includes(e) && e.address !== session.primary.address)
        .map((e) => ({
          address: e.address,
          problem: e.down ??
            (e.sdown
              ? "a sentinel reports it down (+sdown)"
              : `backing off after: ${e.lastProblem}`),
        }));
    if (candidates.length === 0) {
      const problems = skipped();
      const reason: NoReplicaReason = problems.length === 0 ? "none-listed" : "down";
      return await this.#noReplica(policy, reason, problems, run, options, scope);
    }
    let required: number;
    try {
      required = await this.#freshness.ensure(
        need,
        () => this.#parts.clock.now(),
        () => this.#sample(session),
      );
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      signal?.throwIfAborted();
      const problem = `the primary's offset could not be sampled (${messageOf(error)})`;
      if (policy === "replica") {
        throw new NoReplicaError("beyond-bound", [{ address: session.primary.address, problem }]);
      }
      return await this.#primary(run, options, scope, problem);
    }
    // Sample ahead while the newest is half way to the bound, so later reads do not wait.
    const clock = this.#parts.clock;
    if (this.#freshness.newestAge(session, clock.now()) > maxLagMs / 2) {
      this.#freshness.refresh(session, () => clock.now(), () => this.#sample(session));
    }
    let lagging = false;
    const problems: ReplicaProblem[] = [];
    const start = this.#next++;
    for (let i = 0; i < candidates.length; i++) {
      const entry = candidates[(start + i) % candidates.length]!;
      const outcome = await this.#tryReplica(entry, run, options, need, required, scope);
      if ("reply" in outcome) return outcome;
      problems.push({ address: entry.address, problem: outcome.problem });
      if (outcome.lagging) lagging = true;
    }
    return await this.#noReplica(
      policy,
      lagging ? "beyond-bound" : "down",
      [...skipped(), ...problems],
      run,
      options,
      scope,
    );
  }

  /** No replica served: the primary (`replica-preferred`) or the typed error (`replica`). */
  #noReplica(
    policy: ReadFrom,
    reason: NoReplicaReason,
    problems: ReplicaProblem[],
    run: ReadRun,
    options: ReadOptions,
    scope: ReadScope | undefined,
  ): Promise<ServedRead> {
    if (policy === "replica") throw new NoReplicaError(reason, problems);
    const why = problems.length === 0
      ? "the sentinels list no replica"
      : problems.map((p) => `${p.address}: ${p.problem}`).join("; ");
    return this.#primary(run, options, scope, why);
  }

  async #primary(
    run: ReadRun,
    options: ReadOptions,
    scope: ReadScope | undefined,
    fallback: string | undefined,
  ): Promise<ServedRead> {
    const { reply, node } = await this.#parts.primaryRead(run, options);
    if (scope !== undefined) scope.pinned ??= { kind: "primary" };
    this.#parts.metrics.read("primary", fallback !== undefined);
    return { reply, servedBy: "primary", node, fallback };
  }

  /** The primary's replication offset, by `ROLE` on the session's hot connection. */
  async #sample(session: Session): Promise<number> {
    const reply = await session.hot.send(["ROLE"], {
      timeoutMs: this.#parts.sampleTimeoutMs,
      signal: this.#parts.link.closing,
    });
    const { role, offset } = parseRole(reply);
    if (role !== "master") {
      void this.#parts.link.reverify(session);
      throw new Error(`${session.primary.address} answered ROLE ${role}`);
    }
    this.#parts.metrics.offsetSample();
    return offset;
  }

  /**
   * One replica: `ROLE` and the read in one pipeline, then the proof.
   * Resolves with the read, or with why the replica could not serve it.
   */
  async #tryReplica(
    entry: ReplicaEntry,
    run: ReadRun,
    options: ReadOptions,
    need: ReadNeed<Session>,
    required: number,
    scope: ReadScope | undefined,
  ): Promise<ServedRead | { problem: string; lagging: boolean }> {
    const replicas = this.#parts.replicas!;
    const metrics = this.#parts.metrics;
    let conn: RedisConnection;
    try {
      conn = await this.#connect(entry, options.signal);
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      const problem = `cannot connect (${messageOf(error)})`;
      replicas.failed(entry, problem, true);
      metrics.replicaSkipped("unreachable");
      return { problem, lagging: false };
    }
    const answer = await this.#pipeline(conn, run, options);
    if ("error" in answer) {
      const problem = messageOf(answer.error);
      const timeout = /No reply .* within/.test(problem);
      replicas.failed(entry, problem, true);
      metrics.replicaSkipped(timeout ? "timeout" : "unreachable");
      return { problem, lagging: false };
    }
    const role = parseRole(answer.role);
    const primary = need.session.primary.address;
    const verdict = role.role !== "slave"
      ? { why: `ROLE says ${role.role}, not a replica`, reason: "not_replica" }
      : role.primary !== primary
      ? { why: `follows ${role.primary}, not the primary ${primary}`, reason: "other_primary" }
      : role.state !== "connected"
      ? { why: `replication link ${role.state}`, reason: "link_down" }
      : need.session.retired
      ? { why: `the primary ${primary} was replaced meanwhile`, reason: "other_primary" }
      : role.offset < required
      ? { why: `applied offset ${role.offset} < ${required} (lagging)`, reason: "lagging" }
      : undefined;
    if (verdict !== undefined) {
      metrics.replicaSkipped(verdict.reason);
      if (verdict.reason === "lagging" || verdict.reason === "link_down") {
        replicas.lagging(entry, verdict.why);
      } else {
        replicas.failed(entry, verdict.why, false);
        replicas.changed();
      }
      return { problem: verdict.why, lagging: verdict.reason !== "not_replica" };
    }
    if (answer.reply instanceof Error) {
      if (answer.reply instanceof ReplyError && NOT_NOW.has(answer.reply.prefix)) {
        replicas.failed(entry, answer.reply.message, false);
        metrics.replicaSkipped("refused");
        return { problem: answer.reply.message, lagging: false };
      }
      // A real answer (WRONGTYPE, a script's error): the primary would say the same.
      throw answer.reply;
    }
    replicas.served(entry);
    if (scope !== undefined) {
      scope.pinned = { kind: "replica", entry, conn, primary, offset: role.offset };
    }
    metrics.read("replica", false);
    return { reply: answer.reply, servedBy: "replica", node: entry.address };
  }

  /** A read on the replica a scope pinned: the same connection, never older than before. */
  async #onPinned(
    run: ReadRun,
    options: ReadOptions,
    pinned: Extract<ReadScope["pinned"], { kind: "replica" }>,
  ): Promise<ServedRead> {
    const answer = await this.#pipeline(pinned.conn, run, options);
    if ("error" in answer) throw new ScopeLostError(messageOf(answer.error));
    const role = parseRole(answer.role);
    if (
      role.role !== "slave" || role.primary !== pinned.primary || role.state !== "connected" ||
      role.offset < pinned.offset
    ) {
      throw new ScopeLostError(`${pinned.entry.address} moved (${role.role} ${role.state})`);
    }
    if (answer.reply instanceof Error) {
      if (answer.reply instanceof ReplyError && NOT_NOW.has(answer.reply.prefix)) {
        throw new ScopeLostError(answer.reply.message);
      }
      throw answer.reply;
    }
    this.#parts.metrics.read("replica", false);
    return { reply: answer.reply, servedBy: "replica", node: pinned.entry.address };
  }

  async #connect(entry: ReplicaEntry, signal: AbortSignal | undefined): Promise<RedisConnection> {
    signal?.throwIfAborted();
    return await this.#parts.replicas!.connection(entry);
  }

  /**
   * A `ROLE` queued on `conn` ahead of the read: shared by every read queued
   * in the same turn (they go out in one socket write behind it, so its
   * offset is a lower bound for each), a new one in the next turn.
   */
  #role(
    conn: RedisConnection,
    options: { timeoutMs: number; signal: AbortSignal | undefined },
  ): Promise<RespReply> {
    const shared = this.#roles.get(conn);
    if (shared !== undefined) return shared;
    // The caller's signal is not passed: another read may share this ROLE.
    const role = conn.send(["ROLE"], { timeoutMs: options.timeoutMs, strings: true });
    role.catch(() => {});
    this.#roles.set(conn, role);
    queueMicrotask(() => this.#roles.delete(conn));
    return role;
  }

  /** `ROLE` and the read, pipelined; a connection failure or timeout as `error`. */
  async #pipeline(
    conn: RedisConnection,
    run: ReadRun,
    options: ReadOptions,
  ): Promise<{ role: RespReply; reply: RespReply | Error } | { error: unknown }> {
    const sendOptions = {
      timeoutMs: this.#parts.replicaTimeoutMs,
      signal: options.signal,
      strings: options.bytes !== true,
    };
    const role = this.#role(conn, sendOptions);
    const reply = run((args) => conn.send(args, sendOptions));
    const [r, v] = await Promise.allSettled([role, reply]);
    const aborted = [r, v].find((s) => s.status === "rejected" && s.reason instanceof AbortedError);
    if (aborted !== undefined) throw (aborted as PromiseRejectedResult).reason;
    if (r.status === "rejected") return { error: r.reason };
    if (v.status === "rejected" && !(v.reason instanceof ReplyError)) return { error: v.reason };
    return { role: r.value, reply: v.status === "fulfilled" ? v.value : v.reason as Error };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
