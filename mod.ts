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

export { backoffDelayMs, totalBackoffRangeMs } from "./lib/backoff.ts";
export type { BackoffOptions } from "./lib/backoff.ts";
export { RedisHaClient } from "./lib/client.ts";
export type { ClientOptions, CommandOptions, PrimaryInfo } from "./lib/client.ts";
export {
  CONFIG_VARIABLES,
  configFromOptions,
  DEFAULTS,
  fieldForVariable,
  flagForVariable,
  parseConfig,
} from "./lib/config.ts";
export type { Config, ConfigOptions, Defaults, HaMode } from "./lib/config.ts";
export { RedisConnection } from "./lib/connection.ts";
export type { ConnectOptions, MessageHandler, SendOptions } from "./lib/connection.ts";
export { formatEndpoint, parseEndpoint } from "./lib/endpoint.ts";
export type { Endpoint } from "./lib/endpoint.ts";
export {
  AbortedError,
  AlreadyExistsError,
  AuthError,
  ConfigError,
  ConnectionError,
  CorruptBundleError,
  FencedError,
  InvalidTransitionError,
  KeyTypeError,
  LeaseHeldError,
  LeaseLostError,
  MasterUnknownError,
  NoSentinelReachableError,
  NotFoundError,
  NotPrimaryError,
  OutcomeUnknownError,
  ProtocolError,
  RedisHaError,
  ReplyError,
  RetriesExhaustedError,
  RoleMismatchError,
  TlsError,
  UsageError,
  ValidationError,
  VersionConflictError,
  WaitError,
} from "./lib/errors.ts";
export type { ConfigIssue, RedisHaErrorCode, SendState, SentinelFailure } from "./lib/errors.ts";
export { HaEvents } from "./lib/events.ts";
export type { HaEventListener, HaEventMap, HaEventType } from "./lib/events.ts";
export { configureCliLogging, LOG_CATEGORY } from "./lib/log.ts";
export type { CliLoggingOptions, LogFormat, LogLevel } from "./lib/log.ts";
export { classifyFailure, RETRYABLE_REPLY_PREFIXES } from "./lib/reconnect.ts";
export type { FailureAction } from "./lib/reconnect.ts";
export { decideMaster, majorityOf } from "./lib/resolver_decision.ts";
export type { MasterDecision, SentinelAnswer, StaleSentinel } from "./lib/resolver_decision.ts";
export { encodeCommand, replyToMap, replyToNumber, replyToString, RespReader } from "./lib/resp.ts";
export type { RespArg, RespReply } from "./lib/resp.ts";
export { Secret } from "./lib/secret.ts";
export { SentinelResolver } from "./lib/sentinel_resolver.ts";
export type { SentinelResolverOptions } from "./lib/sentinel_resolver.ts";
export { SENTINEL_CHANNELS, SentinelWatcher } from "./lib/sentinel_watcher.ts";
export type { SentinelEvent, SentinelWatcherOptions } from "./lib/sentinel_watcher.ts";
export { STATE_DEFAULTS, StateStore } from "./lib/state_store.ts";
export type { StateStoreOptions } from "./lib/state_store.ts";
export type { FenceToken, OperationOptions, StoreContext } from "./lib/_context.ts";
export { JOB_STATUSES, JobStore, TERMINAL_STATUSES } from "./lib/jobs.ts";
export type {
  CreateJobOptions,
  Job,
  JobPage,
  JobStatus,
  JobUpdate,
  ListJobsOptions,
} from "./lib/jobs.ts";
export { SnapshotStore } from "./lib/snapshots.ts";
export type { SaveSnapshotOptions, SaveSnapshotResult, Snapshot } from "./lib/snapshots.ts";
export { EventHistory } from "./lib/event_history.ts";
export type {
  AppendOptions,
  AppendResult,
  NewEvent,
  ReadEventsOptions,
  StoredEvent,
  TailOptions,
} from "./lib/event_history.ts";
export { NodeRegistry } from "./lib/nodes.ts";
export type { NodeInfo, NodeStatus, RegisterNodeOptions } from "./lib/nodes.ts";
export { BundleStore } from "./lib/bundles.ts";
export type { Bundle, BundleInfo } from "./lib/bundles.ts";
export { acquireLease, campaign, keepAliveTiming, Lease, observeLease } from "./lib/lease.ts";
export type {
  AcquireLeaseOptions,
  CampaignOptions,
  KeepAliveOptions,
  LeaseState,
} from "./lib/lease.ts";
export { composeToken, decomposeToken, FENCE_BITS, nextTokenParts } from "./lib/fencing.ts";
export type { FenceParts, FenceState } from "./lib/fencing.ts";
export { checkId, jobLeaseName, Keys, LEADER_LEASE } from "./lib/keys.ts";
export { Script } from "./lib/script.ts";
export { GroupWait } from "./lib/durable_write.ts";
