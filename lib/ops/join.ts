/**
 * `mn-redis-ha join`: configures this box's Redis and Sentinel into a
 * Sentinel-managed cluster (the user doc's `scripts/redis_ha.sh join`).
 *
 * @module
 */

import { type ConnectOptions, RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint, formatHostPort } from "../protocol/endpoint.ts";
import { RedisHaError, ReplyError, UsageError } from "../common/errors.ts";
import { parseInfo } from "../protocol/info.ts";
import { replyToMap, replyToString } from "../protocol/resp.ts";
import {
  aclUsers,
  derivePassword,
  REPLICATION_USER,
  runtimeEnvFile,
  SENTINEL_USER,
  setUserCommand,
} from "./_acl.ts";
import { waitFor } from "../common/wait_for.ts";
import { currentPrimary, findPrimary } from "./join_primary.ts";
import {
  type BoxOptions,
  ensureDaemon,
  redisAuth,
  sentinelAuth,
  shutdownDaemon,
} from "./daemon.ts";

/** Options of `join`, one per flag. */
export interface JoinOptions extends BoxOptions {
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
  /**
   * `--peer-timeout`: how long to wait for listed sentinels that do not
   * answer while no answering one knows the master.
   * @default {120000}
   */
  peerTimeoutMs?: number | undefined;
  /**
   * `--min-replicas-to-write`: the primary refuses writes while fewer
   * replicas than this are connected with lag up to `minReplicasMaxLagS`
   * (Redis `min-replicas-to-write`). 0 is off.
   * @default {0}
   */
  minReplicasToWrite?: number | undefined;
  /** `--min-replicas-max-lag` (seconds). @default {10} */
  minReplicasMaxLagS?: number | undefined;
  /**
   * `--acl`: create least-privilege ACL users (runtime `runtimeUser` limited
   * to `namespace`, replication, Sentinel) with passwords derived from
   * `MN_REDIS_PASSWORD`, and use them for replication and Sentinel.
   */
  acl?: { runtimeUser: string; namespace: string } | undefined;
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
  /** With `--acl`: the runtime's environment file (user and derived password, mode 0600). */
  readonly runtimeEnvFile?: string | undefined;
}

/** Runs `join`. */
export async function join(options: JoinOptions): Promise<JoinResult> {
  const started: Started = [];
  try {
    return await joinSteps(options, started);
  } catch (error) {
    // Refused, failed or interrupted: stop the daemons this run started (never ones it
    // adopted), so a failed join leaves the box as it found it.
    if (started.length > 0) {
      options.report(
        `join: stopping what this run started: ${
          started.map((d) => formatEndpoint(d.endpoint)).join(", ")
        }`,
      );
      await Promise.all(started.map((d) => shutdownDaemon(d.endpoint, d.auth)));
    }
    throw error;
  }
}

/** Daemons this run started (stopped again if the join fails). */
type Started = Array<{ endpoint: Endpoint; auth: ConnectOptions }>;

async function joinSteps(options: JoinOptions, started: Started): Promise<JoinResult> {
  const self = { host: options.selfHost, port: options.redisPort };
  const selfSentinel = { host: options.selfHost, port: options.sentinelPort };
  const warnings = joinWarnings(options, self, selfSentinel);
  const { redisDaemon, sentinelDaemon } = await ensureBoxDaemons(options, started);
  // Who is primary? Ask every listed sentinel (this box's too) and wait for all answers.
  const listed = options.sentinels.some((s) => formatEndpoint(s) === formatEndpoint(selfSentinel));
  const sentinels = listed ? options.sentinels : [...options.sentinels, selfSentinel];
  const found = await findPrimary(options, sentinels, selfSentinel, self);
  const runtimeEnvPath = await configureRedis(
    options,
    self,
    found.primary,
    formatEndpoint(found.primary) === formatEndpoint(self),
  );
  await configureSentinel(options, selfSentinel, found.primary);
  const primary = await awaitRoles(options, self, selfSentinel, sentinels, found.primary);
  const bootstrapped = found.bootstrapped;
  await protectDataDir(options.dataDir);
  return {
    role: formatEndpoint(primary) === formatEndpoint(self) ? "primary" : "replica",
    primary: formatEndpoint(primary),
    redis: formatEndpoint(self),
    sentinel: formatEndpoint(selfSentinel),
    redisDaemon,
    sentinelDaemon,
    bootstrapped,
    warnings,
    ...(runtimeEnvPath === undefined ? {} : { runtimeEnvFile: runtimeEnvPath }),
  };
}

/** The topology and security warnings of a join, each reported; returned for the result. */
function joinWarnings(options: JoinOptions, self: Endpoint, selfSentinel: Endpoint): string[] {
  const warnings = topologyWarnings(options.sentinels.length, options.quorum);
  if (options.password === undefined) {
    warnings.push(
      `MN_REDIS_PASSWORD is not set: Redis ${formatEndpoint(self)} and Sentinel ${
        formatEndpoint(selfSentinel)
      } accept every client that reaches them (protected-mode is off, because the other boxes ` +
        "must connect). Anyone on the network can read, change or delete all MirrorNeuron state " +
        "and trigger failovers. Set MN_REDIS_PASSWORD (and MN_REDIS_SENTINEL_PASSWORD) on every " +
        "box and join again; see the README's security section",
    );
  }
  for (const w of warnings) options.report(`warning: ${w}`);
  if (!options.sentinels.some((s) => formatEndpoint(s) === formatEndpoint(selfSentinel))) {
    options.report(
      `warning: --sentinels does not list this box's sentinel ${formatEndpoint(selfSentinel)}; ` +
        "other nodes will not ask it",
    );
  }
  return warnings;
}

/** Starts (or adopts) the box's Redis and Sentinel; what it starts goes on `started`. */
async function ensureBoxDaemons(
  options: JoinOptions,
  started: Started,
): Promise<{ redisDaemon: string; sentinelDaemon: string }> {
  const self = { host: options.selfHost, port: options.redisPort };
  const selfSentinel = { host: options.selfHost, port: options.sentinelPort };
  options.report(`join: ensuring redis-server on ${formatEndpoint(self)}`);
  const redisDaemon = await ensureDaemon({
    kind: "redis",
    selfHost: options.selfHost,
    port: options.redisPort,
    dataDir: options.dataDir,
    password: options.password,
    peerPassword: options.password,
    tls: options.tls,
    minReplicasToWrite: options.minReplicasToWrite ?? 0,
    minReplicasMaxLagS: options.minReplicasMaxLagS ?? 10,
    timeoutMs: options.timeoutMs,
  });
  if (redisDaemon === "started") started.push({ endpoint: self, auth: redisAuth(options) });
  options.signal?.throwIfAborted();
  options.report(`join: ensuring redis-sentinel on ${formatEndpoint(selfSentinel)}`);
  const sentinelDaemon = await ensureDaemon({
    kind: "sentinel",
    selfHost: options.selfHost,
    port: options.sentinelPort,
    dataDir: options.dataDir,
    password: options.sentinelPassword,
    tls: options.tls,
    timeoutMs: options.timeoutMs,
  });
  if (sentinelDaemon === "started") {
    started.push({ endpoint: selfSentinel, auth: sentinelAuth(options) });
  }
  options.signal?.throwIfAborted();
  return { redisDaemon, sentinelDaemon };
}

/**
 * The local Redis in its role: ACL users first (a replica authenticates to
 * its primary as the replication user), the write bound, then primary or
 * replica of `primary`. Returns the runtime's env file with `--acl`.
 */
async function configureRedis(
  options: JoinOptions,
  self: Endpoint,
  primary: Endpoint,
  isPrimary: boolean,
): Promise<string | undefined> {
  await using redis = await RedisConnection.connect(self, redisAuth(options));
  const runtimeEnvPath = await configureAcl(options, redis);
  // An adopted Redis gets the write bound too (a started one has it in its config file).
  await redis.send([
    "CONFIG",
    "SET",
    "min-replicas-to-write",
    options.minReplicasToWrite ?? 0,
    "min-replicas-max-lag",
    options.minReplicasMaxLagS ?? 10,
  ]);
  const info = parseInfo(replyToString(await redis.send(["INFO", "replication"])) ?? "");
  if (isPrimary) {
    if (info.get("role") !== "master") await redis.send(["REPLICAOF", "NO", "ONE"]);
  } else if (
    info.get("role") !== "slave" || info.get("master_host") !== primary.host ||
    info.get("master_port") !== String(primary.port)
  ) {
    options.report(`join: making ${formatEndpoint(self)} a replica of ${formatEndpoint(primary)}`);
    await redis.send(["REPLICAOF", primary.host, primary.port]);
  }
  await redis.send(["CONFIG", "REWRITE"]).catch(() => {});
  return runtimeEnvPath;
}

/** `--acl`: the three users, replication as its user, the runtime's env file (0600). */
async function configureAcl(
  options: JoinOptions,
  redis: RedisConnection,
): Promise<string | undefined> {
  if (options.acl === undefined || options.password === undefined) return undefined;
  const users = aclUsers(options.password, options.acl.runtimeUser, options.acl.namespace);
  for (const user of users) await redis.send(setUserCommand(user));
  const replication = users.find((u) => u.name === REPLICATION_USER)!;
  await redis.send([
    "CONFIG",
    "SET",
    "masteruser",
    replication.name,
    "masterauth",
    replication.password.reveal(),
  ]);
  const runtimeEnvPath = `${options.dataDir}/mn-runtime.env`;
  await Deno.writeTextFile(runtimeEnvPath, runtimeEnvFile(users[0]!), { mode: 0o600 });
  await Deno.chmod(runtimeEnvPath, 0o600);
  options.report(
    `join: ACL users ${
      users.map((u) => u.name).join(", ")
    } set; the runtime's credentials are in ${runtimeEnvPath}`,
  );
  return runtimeEnvPath;
}

/** A failover during the join is followed this many times before the join gives up. */
const MAX_PRIMARY_MOVES = 3;

/**
 * Waits until the local Redis is confirmed in its role and the local
 * Sentinel sees the primary; returns the primary. When the sentinels fail
 * over while the box joins (the primary found is killed, or Sentinel's
 * occasional second failover), the join follows the primary they agree on
 * now instead of waiting for one that is gone.
 */
async function awaitRoles(
  options: JoinOptions,
  self: Endpoint,
  selfSentinel: Endpoint,
  sentinels: readonly Endpoint[],
  found: Endpoint,
): Promise<Endpoint> {
  let primary = found;
  for (let moves = 0;; moves++) {
    const moved = await awaitLocalRole(options, self, sentinels, primary) ??
      await awaitSentinelView(options, selfSentinel, sentinels, primary);
    if (moved === undefined) return primary;
    if (moves === MAX_PRIMARY_MOVES) {
      throw new RedisHaError(
        "MASTER_UNKNOWN",
        `The primary moved ${moves + 1} times while ${formatEndpoint(self)} joined ` +
          `(last ${formatEndpoint(primary)} -> ${formatEndpoint(moved)}): the sentinels keep ` +
          "failing over; check `mn-redis-ha inspect` and the sentinel logs, then join again",
      );
    }
    options.report(
      `join: the sentinels failed over during the join: the primary is now ${
        formatEndpoint(moved)
      } (was ${formatEndpoint(primary)}); following it`,
    );
    primary = moved;
    if (formatEndpoint(primary) !== formatEndpoint(self)) await follow(options, self, primary);
  }
}

/** Makes the local Redis a replica of `primary` unless it already is one. */
async function follow(options: JoinOptions, self: Endpoint, primary: Endpoint): Promise<void> {
  await using redis = await RedisConnection.connect(self, redisAuth(options));
  const info = parseInfo(replyToString(await redis.send(["INFO", "replication"])) ?? "");
  if (
    info.get("role") === "slave" &&
    formatHostPort(info.get("master_host"), info.get("master_port")) === formatEndpoint(primary)
  ) return;
  options.report(`join: making ${formatEndpoint(self)} a replica of ${formatEndpoint(primary)}`);
  await redis.send(["REPLICAOF", primary.host, primary.port]);
  await redis.send(["CONFIG", "REWRITE"]).catch(() => {});
}

/** How long a replica's link may stay down before the join asks whether the primary moved. */
const LINK_DOWN_ASK_MS = 2000;

/**
 * Waits until the local Redis is the primary, or a replica of `primary`
 * with its link up (the link state is reported when it changes): returns
 * `undefined`. While the link stays down, asks the sentinels every
 * {@link LINK_DOWN_ASK_MS} whether they failed over, and returns the new
 * primary if so. A fresh connection per look: Sentinel kills a node's
 * clients when it reconfigures it, and a killed connection must not end the
 * wait.
 */
async function awaitLocalRole(
  options: JoinOptions,
  self: Endpoint,
  sentinels: readonly Endpoint[],
  primary: Endpoint,
): Promise<Endpoint | undefined> {
  const isPrimary = formatEndpoint(primary) === formatEndpoint(self);
  let lastLink: string | undefined;
  let nextAsk = performance.now() + LINK_DOWN_ASK_MS;
  return await waitFor<Endpoint | undefined>(async () => {
    await using look = await RedisConnection.connect(self, redisAuth(options));
    const now = parseInfo(replyToString(await look.send(["INFO", "replication"])) ?? "");
    if (isPrimary) {
      return now.get("role") === "master"
        ? { done: true, value: undefined }
        : { done: false, observed: `role ${now.get("role")}` };
    }
    const link = now.get("master_link_status");
    const following = formatHostPort(now.get("master_host"), now.get("master_port"));
    if (link !== lastLink) {
      options.report(`join: replication link to ${following}: ${link}`);
      lastLink = link;
    }
    if (link === "up" && following === formatEndpoint(primary)) {
      return { done: true, value: undefined };
    }
    if (performance.now() >= nextAsk) {
      nextAsk = performance.now() + LINK_DOWN_ASK_MS;
      const now = await currentPrimary(options, sentinels);
      if (now !== undefined && formatEndpoint(now) !== formatEndpoint(primary)) {
        return { done: true, value: now };
      }
    }
    return { done: false, observed: `replica of ${following}, master_link_status=${link}` };
  }, {
    timeoutMs: options.timeoutMs,
    intervalMs: 250,
    signal: options.signal,
    what: `${formatEndpoint(self)} to be confirmed as ${
      isPrimary ? "primary" : `replica of ${formatEndpoint(primary)}`
    }`,
  });
}

/**
 * Waits until the local Sentinel sees `primary` as master: `undefined`. If
 * it sees another master and the sentinels name that one now (they failed
 * over meanwhile), returns it.
 */
async function awaitSentinelView(
  options: JoinOptions,
  selfSentinel: Endpoint,
  sentinels: readonly Endpoint[],
  primary: Endpoint,
): Promise<Endpoint | undefined> {
  await using sentinel = await RedisConnection.connect(selfSentinel, sentinelAuth(options));
  return await waitFor(async () => {
    const m = replyToMap(await sentinel.send(["SENTINEL", "MASTER", options.masterName]));
    const flags = replyToString(m.get("flags") ?? null) ?? "";
    const seen = formatHostPort(
      replyToString(m.get("ip") ?? null),
      replyToString(m.get("port") ?? null),
    );
    if (flags === "master" && seen === formatEndpoint(primary)) {
      return { done: true, value: undefined };
    }
    if (flags === "master") {
      const now = await currentPrimary(options, sentinels);
      if (now !== undefined && formatEndpoint(now) === seen) return { done: true, value: now };
    }
    return { done: false, observed: `local sentinel sees ${seen} with flags ${flags}` };
  }, {
    timeoutMs: options.timeoutMs,
    intervalMs: 250,
    signal: options.signal,
    what: "the local sentinel to see the primary",
  });
}

async function configureSentinel(
  options: JoinOptions,
  selfSentinel: Endpoint,
  primary: Endpoint,
): Promise<void> {
  await using sentinel = await RedisConnection.connect(selfSentinel, {
    ...sentinelAuth(options),
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
  if (options.acl !== undefined && options.password !== undefined) {
    settings.push(
      "auth-user",
      SENTINEL_USER,
      "auth-pass",
      derivePassword(options.password, SENTINEL_USER).reveal(),
    );
  } else if (options.password !== undefined) {
    settings.push("auth-pass", options.password.reveal());
  }
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

/** Checks join's options before anything starts. */
export function checkJoinOptions(
  options: Pick<JoinOptions, "quorum" | "sentinels" | "acl" | "password">,
): void {
  if (options.acl !== undefined && options.password === undefined) {
    throw new UsageError(
      "--acl needs MN_REDIS_PASSWORD: it stays the administrator's password, and the ACL users' " +
        "passwords are derived from it (the same on every box)",
    );
  }
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
