/**
 * The key schema: every key MirrorNeuron state uses, under one namespace.
 * Documented in `docs/key-schema.md`; ids are validated so no id can reach
 * into another record's keys.
 *
 * @module
 */

import { ValidationError } from "../common/state_errors.ts";

/** Ids: 1-128 of `A-Z a-z 0-9 _ . - @`, not starting with `.` (no `:`, which separates key parts). */
const ID_PATTERN = /^[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,127}$/;

/** Throws {@link ValidationError} unless `id` is a valid record id. Returns it. */
export function checkId(field: string, id: unknown): string {
  if (typeof id !== "string") {
    throw new ValidationError(
      field,
      `expected a string id, got ${id === null ? "null" : typeof id}`,
    );
  }
  if (id.length === 0) {
    throw new ValidationError(field, "the id is empty; expected 1-128 characters");
  }
  if (id.length > 128) {
    throw new ValidationError(
      field,
      `the id is ${id.length} characters long; expected at most 128`,
    );
  }
  if (!ID_PATTERN.test(id)) {
    throw new ValidationError(
      field,
      `${JSON.stringify(id)} has characters outside A-Z a-z 0-9 _ . - @ (or starts with "."); ` +
        "':' and spaces would break the key schema",
    );
  }
  return id;
}

/** Holder ids: like record ids, plus `:` (they are values, never part of a key). */
const HOLDER_PATTERN = /^[A-Za-z0-9_@-][A-Za-z0-9_.@:-]{0,127}$/;

/** Throws {@link ValidationError} unless `holder` is a valid lease holder id. Returns it. */
export function checkHolder(holder: unknown): string {
  if (typeof holder !== "string" || !HOLDER_PATTERN.test(holder)) {
    throw new ValidationError(
      "holder",
      `${JSON.stringify(holder)} is not a holder id: expected 1-128 of A-Z a-z 0-9 _ . - @ :`,
    );
  }
  return holder;
}

/** Builds every key of one namespace. */
export class Keys {
  /** The namespace prefix (`MN_REDIS_NAMESPACE`). */
  readonly namespace: string;

  /** Creates the schema for a namespace. */
  constructor(namespace: string) {
    this.namespace = namespace;
  }

  /** Hash: one job. */
  job(jobId: string): string {
    return `${this.namespace}:job:${jobId}`;
  }

  /** Sorted set: every job id, scored by creation time (ms). */
  jobIndex(): string {
    return `${this.namespace}:jobs`;
  }

  /** Sorted set: job ids with one status, scored by creation time (ms). */
  jobStatusIndex(status: string): string {
    return `${this.namespace}:jobs:status:${status}`;
  }

  /** Hash: the latest snapshot of one agent in one job. */
  snapshot(jobId: string, agentId: string): string {
    return `${this.namespace}:job:${jobId}:snapshot:${agentId}`;
  }

  /** Stream: a job's event history. */
  events(jobId: string): string {
    return `${this.namespace}:job:${jobId}:events`;
  }

  /** Hash: writer-chosen event id → stream entry id (deduplication). */
  eventIds(jobId: string): string {
    return `${this.namespace}:job:${jobId}:event-ids`;
  }

  /** Hash: one node's registration and last heartbeat. */
  node(nodeId: string): string {
    return `${this.namespace}:node:${nodeId}`;
  }

  /** Set: every registered node id. */
  nodeIndex(): string {
    return `${this.namespace}:nodes`;
  }

  /** Hash: a bundle's current version pointer and metadata. */
  bundle(bundleId: string): string {
    return `${this.namespace}:bundle:${bundleId}`;
  }

  /** String: one chunk of one bundle version. */
  bundleChunk(bundleId: string, version: string, index: number): string {
    return `${this.bundleChunkPrefix(bundleId, version)}${index}`;
  }

  /** The prefix of a bundle version's chunk keys (the chunk index follows). */
  bundleChunkPrefix(bundleId: string, version: string): string {
    return `${this.namespace}:bundle:${bundleId}:v:${version}:`;
  }

  /** Hash: a lease (holder, token), with the lease TTL as its expiry. */
  lease(name: string): string {
    return `${this.namespace}:lease:${name}`;
  }

  /** Hash: a lease's fencing floor (epoch parts, counter, replication id). Never expires. */
  fence(name: string): string {
    return `${this.namespace}:fence:${name}`;
  }
}

/** The name of the cluster's leader lease. */
export const LEADER_LEASE = "leader";

/** The name of a job's lease. */
export function jobLeaseName(jobId: string): string {
  return `job.${checkId("jobId", jobId)}`;
}
