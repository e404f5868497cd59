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
  AuthError,
  ConfigError,
  ConnectionError,
  MasterUnknownError,
  NoSentinelReachableError,
  OutcomeUnknownError,
  ProtocolError,
  RedisHaError,
  ReplyError,
  RetriesExhaustedError,
  RoleMismatchError,
  TlsError,
  UsageError,
  WaitError,
} from "./lib/errors.ts";
export type { ConfigIssue, RedisHaErrorCode, SendState, SentinelFailure } from "./lib/errors.ts";
export { HaEvents } from "./lib/events.ts";
export type { HaEventListener, HaEventMap, HaEventType } from "./lib/events.ts";
export { configureCliLogging, LOG_CATEGORY } from "./lib/log.ts";
export type { CliLoggingOptions, LogFormat } from "./lib/log.ts";
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
