/**
 * mn-redis-ha: the durable-state layer of MirrorNeuron on Redis with Sentinel
 * failover. One authoritative write path to the Sentinel-elected primary,
 * reconnect with re-resolution, and `WAIT`-confirmed durable writes.
 *
 * @example
 * ```ts
 * import { parseConfig, RedisHaClient } from "@mirror-neuron/redis-ha";
 *
 * // MN_REDIS_HA_MODE=sentinel MN_REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379
 * // MN_REDIS_SENTINEL_MASTER=mirror-neuron MN_REDIS_WAIT_REPLICAS=1
 * const config = parseConfig((name) => Deno.env.get(name));
 * await using client = await RedisHaClient.connect(config);
 * client.events.on("failover", ({ from, to }) => console.log(`primary moved ${from} -> ${to}`));
 * await client.durable(["SET", `${config.namespace}:job:42`, "{}"], { idempotent: true });
 * ```
 *
 * @module
 */

// The HA client and its configuration.
export { RedisHaClient } from "./lib/ha/client.ts";
export type {
  ClientOptions,
  CommandOptions,
  PrimaryInfo,
  ReadOptions,
  ServedRead,
} from "./lib/ha/client.ts";
export { configFromOptions, parseConfig } from "./lib/ha/config.ts";
export type { Config, ConfigOptions, HaMode, ReadFrom } from "./lib/ha/config.ts";
export type { HaEventMap, HaEvents } from "./lib/ha/events.ts";
export type { Endpoint } from "./lib/protocol/endpoint.ts";
export type { RespArg, RespReply } from "./lib/protocol/resp.ts";
export { Secret } from "./lib/common/secret.ts";
export type { Clock } from "./lib/common/clock.ts";
export { LOG_CATEGORY } from "./lib/common/log.ts";
export { DIAGNOSTICS_CHANNELS } from "./lib/ha/metric_registry.ts";

// Typed errors.
export {
  AbortedError,
  AuthError,
  ConfigError,
  ConnectionError,
  MasterUnknownError,
  NoSentinelReachableError,
  NotPermittedError,
  NotPrimaryError,
  OutcomeUnknownError,
  RedisHaError,
  ReplyError,
  RetriesExhaustedError,
  WaitError,
} from "./lib/common/errors.ts";
export {
  AclDeniedError,
  OutOfMemoryError,
  PersistenceError,
  WriteRefusedError,
} from "./lib/common/reply_errors.ts";
export {
  AlreadyExistsError,
  CorruptBundleError,
  FencedError,
  InvalidTransitionError,
  KeyTypeError,
  LeaseHeldError,
  LeaseLostError,
  NotFoundError,
  ValidationError,
  VersionConflictError,
} from "./lib/common/state_errors.ts";
export { NoReplicaError } from "./lib/common/read_errors.ts";
export type { ConfigIssue, RedisHaErrorCode, SentinelFailure } from "./lib/common/errors.ts";

// The state store and its records.
export { StateStore } from "./lib/state/state_store.ts";
export type { StateStoreOptions } from "./lib/state/state_store.ts";
export type {
  FencedWriteOptions,
  FenceToken,
  OperationOptions,
  StateReadOptions,
} from "./lib/state/_context.ts";
export type {
  CreateJobOptions,
  Job,
  JobPage,
  JobStatus,
  JobStore,
  JobUpdate,
  ListJobsOptions,
} from "./lib/state/jobs.ts";
export type { SaveSnapshotResult, Snapshot, SnapshotStore } from "./lib/state/snapshots.ts";
export type {
  AppendResult,
  EventHistory,
  NewEvent,
  ReadEventsOptions,
  StoredEvent,
  TailOptions,
} from "./lib/state/event_history.ts";
export type { NodeInfo, NodeRegistry, NodeStatus, RegisterNodeOptions } from "./lib/state/nodes.ts";
export type { Bundle, BundleInfo, BundleStore } from "./lib/state/bundles.ts";

// Leases and fencing.
export { acquireLease, campaign, observeLease } from "./lib/state/lease.ts";
export type {
  AcquireLeaseOptions,
  CampaignOptions,
  KeepAliveOptions,
  Lease,
  LeaseState,
} from "./lib/state/lease.ts";
export { jobLeaseName, LEADER_LEASE } from "./lib/state/keys.ts";
