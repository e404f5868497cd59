/**
 * The statuses a job moves through. A file of its own, with no imports, so
 * the CLI's flag table can name them without loading the state layer.
 *
 * @module
 */

/** Job statuses. */
export type JobStatus = "pending" | "running" | "succeeded" | "failed" | "cancelled";

/** Every status, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = [
  "pending",
  "running",
  "succeeded",
  "failed",
  "cancelled",
];

/** Statuses a job never leaves. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];
