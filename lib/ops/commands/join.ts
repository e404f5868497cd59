/**
 * `mn-redis-ha join`: configures this box's Redis and Sentinel into a
 * Sentinel-managed cluster (the user doc's `scripts/redis_ha.sh join`).
 *
 * @module
 */

import { RedisConnection } from "../../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../../protocol/endpoint.ts";
import {
  MasterUnknownError,
  NoSentinelReachableError,
  RedisHaError,
  ReplyError,
  UsageError,
} from "../../common/errors.ts";
import { parseInfo } from "../../protocol/info.ts";
import { replyToMap, replyToString } from "../../protocol/resp.ts";
import type { Secret } from "../../common/secret.ts";
import { SentinelResolver } from "../../ha/sentinel_resolver.ts";
import { waitFor } from "../wait.ts";
import { ensureDaemon, shutdownDaemon } from "./_daemon.ts";

/** Options of `join`, one per flag. */
export interface JoinOptions {
  /** Aborts the command at its next wait (SIGINT/SIGTERM in the CLI); what it changed is undone where it can be. */
  signal?: AbortSignal | undefined;
  /** `--self-host`: this box's address, reachable from the other boxes. */
  selfHost: string;
  /** `--redis-port`. @default {6379} */
  redisPort: number;
  /** `--sentinel-port`. @default {26379} */
  sentinelPort: number;
  /** `--sentinels`: every sentinel of the cluster, this box's included. */
  sentinels: readonly Endpoint[];
  /** `--master-name`. */
  masterName: string;
  /** `--quorum`. */
  quorum: number;
  /** `--data-dir`. */
  dataDir: string;
  /** `--down-after-ms`. */
  downAfterMs: number;
  /** `--failover-timeout-ms`. */
  failoverTimeoutMs: number;
  /** `--bootstrap`: allow self-promotion although some sentinels did not answer. */
  bootstrap: boolean;
  /** `--timeout-ms`: how long to wait for the roles to settle. */
  timeoutMs: number;
  /** `MN_REDIS_PASSWORD`. */
  password?: Secret | undefined;
  /** `MN_REDIS_SENTINEL_PASSWORD`. */
  sentinelPassword?: Secret | undefined;
  /** Progress and warning lines (stderr). */
  report: (line: string) => void;
}

/** What `join` did. */
export interface JoinResult {
  /** `primary` or `replica`. */
  readonly role: "primary" | "replica";
  /** The cluster primary, `host:port`. */
  readonly primary: string;
  /** This box's Redis. */
  readonly redis: string;
  /** This box's Sentinel. */
  readonly sentinel: string;
  /** Whether each daemon was started now or adopted. */
  readonly redisDaemon: string;
  /** Whether the sentinel was started now or adopted. */
  readonly sentinelDaemon: string;
  /** Whether this join bootstrapped a new cluster. */
  readonly bootstrapped: boolean;
  /** Warnings about the topology. */
  readonly warnings: readonly string[];
}

/** Runs `join`. */
export async function join(options: JoinOptions): Promise<JoinResult> {
  const started: Array<{ endpoint: Endpoint; password: Secret | undefined }> = [];
  try {
    return await joinSteps(options, started);
  } catch (error) {
    // Interrupted: stop the daemons this run started (never ones it adopted), then report.
    if (options.signal?.aborted) {
      await Promise.all(started.map((d) => shutdownDaemon(d.endpoint, d.password)));
    }
    throw error;
  }
}

async function joinSteps(
  options: JoinOptions,
  started: Array<{ endpoint: Endpoint; password: Secret | undefined }>,
): Promise<JoinResult> {
  const self = { host: options.selfHost, port: options.redisPort };
  const selfSentinel = { host: options.selfHost, port: options.sentinelPort };
  const selfAddress = formatEndpoint(self);
  const warnings = topologyWarnings(options.sentinels.length, options.quorum);
  for (const w of warnings) options.report(`warning: ${w}`);
  if (!options.sentinels.some((s) => formatEndpoint(s) === formatEndpoint(selfSentinel))) {
    options.report(
      `warning: --sentinels does not list this box's sentinel ${formatEndpoint(selfSentinel)}; ` +
        "other nodes will not ask it",
    );
  }

  options.report(`join: ensuring redis-server on ${selfAddress}`);
  const redisDaemon = await ensureDaemon({
    kind: "redis",
    selfHost: options.selfHost,
    port: options.redisPort,
    dataDir: options.dataDir,
    password: options.password,
    peerPassword: options.password,
    timeoutMs: options.timeoutMs,
  });
  if (redisDaemon === "started") started.push({ endpoint: self, password: options.password });
  options.signal?.throwIfAborted();
  options.report(`join: ensuring redis-sentinel on ${formatEndpoint(selfSentinel)}`);
  const sentinelDaemon = await ensureDaemon({
    kind: "sentinel",
    selfHost: options.selfHost,
    port: options.sentinelPort,
    dataDir: options.dataDir,
    password: options.sentinelPassword,
    timeoutMs: options.timeoutMs,
  });
  if (sentinelDaemon === "started") {
    started.push({ endpoint: selfSentinel, password: options.sentinelPassword });
  }
  options.signal?.throwIfAborted();

  // Who is primary? Ask every listed sentinel and wait for all answers.
  const sentinels =
    options.sentinels.some((s) => formatEndpoint(s) === formatEndpoint(selfSentinel))
      ? options.sentinels
      : [...options.sentinels, selfSentinel];
  let primary: Endpoint;
  let bootstrapped = false;
  await using resolver = new SentinelResolver({
    sentinels,
    masterName: options.masterName,
    password: options.sentinelPassword,
    perSentinelTimeoutMs: 1000,
  });
  try {
    const decision = await resolver.resolve({ waitAll: true, signal: options.signal });
    primary = decision.primary;
    options.report(
      `join: sentinels report primary ${
        formatEndpoint(primary)
      } (config-epoch ${decision.configEpoch})`,
    );
  } catch (error) {
    if (!(error instanceof MasterUnknownError) && !(error instanceof NoSentinelReachableError)) {
      throw error;
    }
    const answered = error instanceof MasterUnknownError ? error.answered.length : 0;
    const silent = sentinels.length - answered;
    if (silent > 0 && !options.bootstrap) {
      throw new RedisHaError(
        "MASTER_UNKNOWN",
        `No answering sentinel knows "${options.masterName}", and ${silent} of ${sentinels.length} ` +
          "sentinels did not answer. Refusing to make this box the primary: a sentinel that did not " +
          "answer may know a primary, and two primaries split the cluster. If this box is the first of " +
          "a new cluster, run again with --bootstrap",
      );
    }
    primary = self;
    bootstrapped = true;
    options.report(
      `join: no primary known for "${options.masterName}"; bootstrapping ${selfAddress} as primary`,
    );
  }

  const isPrimary = formatEndpoint(primary) === selfAddress;
  await using redis = await RedisConnection.connect(self, { password: options.password });
  const info = parseInfo(replyToString(await redis.send(["INFO", "replication"])) ?? "");
  if (isPrimary) {
    if (info.get("role") !== "master") await redis.send(["REPLICAOF", "NO", "ONE"]);
  } else if (
    info.get("role") !== "slave" || info.get("master_host") !== primary.host ||
    info.get("master_port") !== String(primary.port)
  ) {
    options.report(`join: making ${selfAddress} a replica of ${formatEndpoint(primary)}`);
    await redis.send(["REPLICAOF", primary.host, primary.port]);
  }
  await redis.send(["CONFIG", "REWRITE"]).catch(() => {});

  await configureSentinel(options, selfSentinel, primary);

  // Wait until the roles are confirmed.
  await waitFor(async () => {
    const now = parseInfo(replyToString(await redis.send(["INFO", "replication"])) ?? "");
    if (isPrimary) {
      return now.get("role") === "master"
        ? { done: true, value: undefined }
        : { done: false, observed: `role ${now.get("role")}` };
    }
    const link = now.get("master_link_status");
    options.report(`join: replication link to ${formatEndpoint(primary)}: ${link}`);
    return link === "up"
      ? { done: true, value: undefined }
      : { done: false, observed: `master_link_status=${link}` };
  }, {
    what: `${selfAddress} to be confirmed as ${isPrimary ? "primary" : "replica"}`,
    timeoutMs: options.timeoutMs,
    intervalMs: 250,
    signal: options.signal,
  });
  await using sentinel = await RedisConnection.connect(selfSentinel, {
    password: options.sentinelPassword,
  });
  await waitFor(async () => {
    const m = replyToMap(await sentinel.send(["SENTINEL", "MASTER", options.masterName]));
    const flags = replyToString(m.get("flags") ?? null) ?? "";
    const seen = `${replyToString(m.get("ip") ?? null)}:${replyToString(m.get("port") ?? null)}`;
    return flags === "master" && seen === formatEndpoint(primary)
      ? { done: true, value: undefined }
      : { done: false, observed: `local sentinel sees ${seen} with flags ${flags}` };
  }, {
    what: "the local sentinel to see the primary",
    timeoutMs: options.timeoutMs,
    intervalMs: 250,
    signal: options.signal,
  });

  await protectDataDir(options.dataDir);
  return {
    role: isPrimary ? "primary" : "replica",
    primary: formatEndpoint(primary),
    redis: selfAddress,
    sentinel: formatEndpoint(selfSentinel),
    redisDaemon,
    sentinelDaemon,
    bootstrapped,
    warnings,
  };
}

async function configureSentinel(
  options: JoinOptions,
  selfSentinel: Endpoint,
  primary: Endpoint,
): Promise<void> {
  await using sentinel = await RedisConnection.connect(selfSentinel, {
    password: options.sentinelPassword,
  });
  try {
    await sentinel.send(["SENTINEL", "MASTER", options.masterName]);
  } catch (error) {
    if (!(error instanceof ReplyError) || !/No such master/i.test(error.reply)) throw error;
    options.report(
      `join: local sentinel now monitors "${options.masterName}" at ${
        formatEndpoint(primary)
      } (quorum ${options.quorum})`,
    );
    await sentinel.send([
      "SENTINEL",
      "MONITOR",
      options.masterName,
      primary.host,
      primary.port,
      options.quorum,
    ]);
  }
  const settings: (string | number)[] = [
    "down-after-milliseconds",
    options.downAfterMs,
    "failover-timeout",
    options.failoverTimeoutMs,
    "quorum",
    options.quorum,
  ];
  if (options.password !== undefined) settings.push("auth-pass", options.password.reveal());
  await sentinel.send(["SENTINEL", "SET", options.masterName, ...settings]);
}

/** Warnings the user doc gives about small Sentinel deployments. */
export function topologyWarnings(sentinelCount: number, quorum: number): string[] {
  const warnings: string[] = [];
  if (quorum <= 1) {
    warnings.push(
      "quorum 1 lets a single sentinel declare the primary down; on two boxes this can split-brain " +
        "during a network partition (fine for development smoke tests, not for production)",
    );
  }
  if (sentinelCount < 3) {
    warnings.push(
      `${sentinelCount} sentinel(s) listed; production needs at least three sentinel voters`,
    );
  }
  return warnings;
}

/** Checks join's numeric options. */
export function checkJoinOptions(options: Pick<JoinOptions, "quorum" | "sentinels">): void {
  if (
    !Number.isInteger(options.quorum) || options.quorum < 1 ||
    options.quorum > options.sentinels.length
  ) {
    throw new UsageError(
      `--quorum is ${options.quorum}; expected 1 to the number of --sentinels (${options.sentinels.length})`,
    );
  }
}

/**
 * Config files hold passwords: 0600 in a 0700 dir. Redis rewrites its config
 * files with the default umask (CONFIG REWRITE, Sentinel state changes), so the
 * modes are restored here and the dir is what keeps them private in between.
 */
async function protectDataDir(dataDir: string): Promise<void> {
  await Deno.chmod(dataDir, 0o700);
  for await (const entry of Deno.readDir(dataDir)) {
    if (entry.isFile && entry.name.endsWith(".conf")) {
      await Deno.chmod(`${dataDir}/${entry.name}`, 0o600);
    }
  }
}
