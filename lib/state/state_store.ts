/**
 * The MirrorNeuron state store: jobs, agent snapshots, event history, node
 * state and bundle archives under one namespace, all written through the HA
 * client's single authoritative write path. Leases live in `lib/state/lease.ts`
 * and take a store as their context.
 *
 * @module
 */

import { BundleStore } from "./bundles.ts";
import { type ClientOptions, RedisHaClient } from "../ha/client.ts";
import type { Config } from "../ha/config.ts";
import { EventHistory } from "./event_history.ts";
import { JobStore } from "./jobs.ts";
import { Keys } from "./keys.ts";
import { NodeRegistry } from "./nodes.ts";
import { SnapshotStore } from "./snapshots.ts";

/** Limits of the state store. */
export interface StateStoreOptions {
  /** Largest bundle archive. @default {67108864} (64 MiB) */
  maxBundleBytes?: number | undefined;
  /** Bundle chunk size. @default {1048576} (1 MiB) */
  bundleChunkBytes?: number | undefined;
  /** Largest JSON payload of a job, event or snapshot. @default {4194304} (4 MiB) */
  maxRecordBytes?: number | undefined;
}

/** Default limits, each with its reason. */
export const STATE_DEFAULTS: Readonly<{ [K in keyof StateStoreOptions]-?: number }> = Object.freeze(
  {
    maxBundleBytes: 64 * 1024 * 1024, // the user's bundle size limit
    bundleChunkBytes: 1024 * 1024, // small enough to replicate without stalling other writes
    maxRecordBytes: 4 * 1024 * 1024, // records are state, not blobs: blobs belong in bundles
  },
);

/**
 * All MirrorNeuron state of one namespace.
 *
 * @example
 * ```ts
 * import { parseConfig, StateStore } from "@mirror-neuron/redis-ha";
 * await using store = await StateStore.connect(parseConfig((n) => Deno.env.get(n)));
 * const job = await store.jobs.create("job-1", { task: "index" });
 * await store.events.append(job.id, { id: "evt-1", type: "job.created" });
 * ```
 */
export class StateStore implements AsyncDisposable {
  /** The HA client all writes go through. */
  readonly client: RedisHaClient;
  /**
   * The namespace's key schema.
   * @internal For the state modules, `inspect` and tests.
   */
  readonly keys: Keys;
  /** Job records. */
  readonly jobs: JobStore;
  /** Agent snapshots. */
  readonly snapshots: SnapshotStore;
  /** Job event histories. */
  readonly events: EventHistory;
  /** Runtime node state. */
  readonly nodes: NodeRegistry;
  /** Bundle archives. */
  readonly bundles: BundleStore;
  #closeClient = false;

  /** Wraps an existing client (which the caller keeps and closes). */
  constructor(client: RedisHaClient, options: StateStoreOptions = {}) {
    this.client = client;
    this.keys = new Keys(client.config.namespace);
    // An option given as `undefined` keeps its default.
    const limits: { [K in keyof StateStoreOptions]-?: number } = { ...STATE_DEFAULTS };
    for (const name of Object.keys(STATE_DEFAULTS) as (keyof StateStoreOptions)[]) {
      const given = options[name];
      if (given !== undefined) limits[name] = given;
    }
    for (const name of Object.keys(STATE_DEFAULTS) as (keyof StateStoreOptions)[]) {
      const value = limits[name];
      if (!Number.isInteger(value) || value < 1024) {
        throw new RangeError(
          `StateStoreOptions.${name} must be a whole number of bytes >= 1024, got ${value}`,
        );
      }
    }
    this.jobs = new JobStore(this, limits.maxRecordBytes);
    this.snapshots = new SnapshotStore(this, limits.maxRecordBytes);
    this.events = new EventHistory(this, limits.maxRecordBytes);
    this.nodes = new NodeRegistry(this);
    this.bundles = new BundleStore(this, {
      maxBytes: limits.maxBundleBytes,
      chunkBytes: limits.bundleChunkBytes,
    });
  }

  /** Connects a client and wraps it; closing the store closes the client. */
  static async connect(
    config: Config,
    options: StateStoreOptions & { client?: ClientOptions | undefined } = {},
  ): Promise<StateStore> {
    const { client: clientOptions, ...limits } = options;
    const client = await RedisHaClient.connect(config, clientOptions);
    try {
      const store = new StateStore(client, limits);
      store.#closeClient = true;
      return store;
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  /** Closes the client if the store opened it. Idempotent. */
  async close(): Promise<void> {
    if (this.#closeClient) await this.client.close();
  }

  /** Same as {@link StateStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
