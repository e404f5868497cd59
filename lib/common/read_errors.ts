/**
 * The error of a read that had to come from a replica
 * (`MN_REDIS_READ_FROM=replica`) when none could serve it.
 *
 * @module
 */

import { RedisHaError } from "./errors.ts";

/**
 * Why no replica served a read: `none-listed` (Sentinel lists no replica,
 * or the client runs in single mode), `down` (every listed replica is
 * flagged down, unreachable or did not answer in time), `beyond-bound`
 * (every replica that answered could not show it holds the primary's state
 * within the lag bound, or the client's own last write).
 */
export type NoReplicaReason = NoReplicaError["reason"];

/** One replica that was tried or skipped, and why it could not serve. */
export type ReplicaProblem = NoReplicaError["replicas"][number];

/**
 * `MN_REDIS_READ_FROM=replica` (or a call's `readFrom: "replica"`) and no
 * replica could serve the read within its guarantees. Nothing was read from
 * the primary. `replica-preferred` reads the primary instead.
 */
export class NoReplicaError extends RedisHaError {
  /** Error class name. */
  override readonly name = "NoReplicaError";
  /**
   * Why: `none-listed` (Sentinel lists no replica, or single mode),
   * `down` (every listed replica is flagged down, unreachable or too slow),
   * `beyond-bound` (none could prove it holds the primary's state within
   * the bound, or this client's last write).
   */
  readonly reason: "none-listed" | "down" | "beyond-bound";
  /**
   * Each replica considered: its `host:port` and what was wrong (e.g.
   * `applied offset 1200 < 1450 (lagging)`).
   */
  readonly replicas: readonly { readonly address: string; readonly problem: string }[];

  /** Creates the error. */
  constructor(
    reason: "none-listed" | "down" | "beyond-bound",
    replicas: readonly { readonly address: string; readonly problem: string }[],
    detail?: string,
  ) {
    const why = reason === "none-listed"
      ? detail ?? "the sentinels list no replica of the master"
      : reason === "down"
      ? "every replica is down, unreachable or too slow to answer"
      : "no replica could show it holds the primary's state within MN_REDIS_READ_MAX_LAG_MS " +
        "(or this client's last write)";
    const each = replicas.map((r) => `${r.address}: ${r.problem}`).join("; ");
    super(
      "NO_REPLICA",
      `No replica can serve this read (MN_REDIS_READ_FROM=replica): ${why}` +
        (each === "" ? "" : ` (${each})`) +
        "; use replica-preferred to read the primary instead, or raise MN_REDIS_READ_MAX_LAG_MS",
    );
    this.reason = reason;
    this.replicas = replicas;
  }
}
