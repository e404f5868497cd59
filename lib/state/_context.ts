import type { ReadOptions, RedisHaClient } from "../ha/client.ts";
import type { ReadFrom } from "../ha/config.ts";
import type { Keys } from "./keys.ts";

/** What every state module needs: the HA client and the namespace's key schema. */
export interface StoreContext {
  /** The HA client (single authoritative write path). */
  readonly client: RedisHaClient;
  /** Key schema of the namespace. */
  readonly keys: Keys;
}

/** A fencing token presented with a write: the lease it came from and its value. */
export interface FenceToken {
  /** Lease name, e.g. `leader` or `job.42`. */
  readonly lease: string;
  /** The token the lease granted. */
  readonly token: number;
}

/**
 * Cancellation every `StateStore` operation takes. Aborting (or passing the
 * deadline) rejects with `AbortedError`, whose `mayHaveApplied` says whether
 * a write had already been sent.
 */
export interface OperationOptions {
  /** Abandons the operation and its retries. */
  signal?: AbortSignal | undefined;
  /** Deadline for the whole operation, retries included. @default {the client's operationTimeoutMs} */
  timeoutMs?: number | undefined;
}

/** One signal for a whole operation (its caller's signal and deadline), or undefined for none. */
export function operationSignal(options: OperationOptions | undefined): AbortSignal | undefined {
  const timeoutMs = options?.timeoutMs;
  if (timeoutMs === undefined) return options?.signal;
  const deadline = AbortSignal.timeout(timeoutMs);
  return options?.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
}

/** Options of a write a lease holder makes: an event append or a snapshot save. */
export interface FencedWriteOptions extends OperationOptions {
  /** Fencing token of the lease the writer holds; a superseded token is rejected. */
  fence?: FenceToken | undefined;
}

/**
 * Options of a state read (`jobs.get`, `jobs.list`, `events.read`,
 * `snapshots.load`, `nodes.list`, `bundles.info`/`get`, `observeLease`):
 * cancellation, and where it may be served (see `RedisHaClient.read`).
 */
export interface StateReadOptions extends OperationOptions {
  /** Overrides `MN_REDIS_READ_FROM` for this read. */
  readFrom?: ReadFrom | undefined;
  /** Overrides `MN_REDIS_READ_MAX_LAG_MS` for this read. */
  maxLagMs?: number | undefined;
}

/** The client read options of a state read, with its one signal. */
export function readOptions(
  options: StateReadOptions | undefined,
  signal: AbortSignal | undefined = operationSignal(options),
): ReadOptions {
  return {
    idempotent: true,
    signal,
    readFrom: options?.readFrom,
    maxLagMs: options?.maxLagMs,
  };
}
