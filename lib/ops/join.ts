/**
 * `mn-redis-ha join`: configures this box's Redis and Sentinel into a
 * Sentinel-managed cluster (the user doc's `scripts/redis_ha.sh join`).
 *
 * @module
 */

import { type ConnectOptions, RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint, formatHostPort } from "../protocol/endpoint.ts";
import {
  MasterUnknownError,
  NoSentinelReachableError,
  RedisHaError,
  ReplyError,
  UsageError,
} from "../common/errors.ts";
import { parseInfo } from "../protocol/info.ts";
import { replyToMap, replyToString } from "../protocol/resp.ts";
import type { Secret } from "../common/secret.ts";
import { SentinelResolver } from "../ha/sentinel_resolver.ts";
import { delay } from "../common/delay.ts";
import {
  aclUsers,
  derivePassword,
  REPLICATION_USER,
  runtimeEnvFile,
  SENTINEL_USER,
  setUserCommand,
} from "./_acl.ts";
import { waitFor } from "../common/wait_for.ts";
import { type BoxTls, ensureDaemon, redisAuth, sentinelAuth, shutdownDaemon } from "./daemon.ts";

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
  /**
   * `--peer-timeout`: how long to wait for listed sentinels that do not
   * answer while no answering one knows the master.
   * @default {120000}
   */
  peerTimeoutMs?: number | undefined;
  /** `--timeout-ms`: how long to wait for the roles to settle. */
  timeoutMs: number;
  /**
   * `--min-replicas-to-write`: the primary refuses writes while fewer
   * replicas than this are connected with lag up to `minReplicasMaxLagS`
   * (Redis `min-replicas-to-write`). 0 is off.
   * @default {0}
   */
  minReplicasToWrite?: number | undefined;
  /** `--min-replicas-max-lag` (seconds). @default {10} */
  minReplicasMaxLagS?: number | undefined;
  /** `MN_REDIS_PASSWORD`. */
  password?: Secret | undefined;
  /** `MN_REDIS_SENTINEL_PASSWORD`. */
  sentinelPassword?: Secret | undefined;
  /**
   * `--acl`: create least-privilege ACL users (runtime `runtimeUser` limited
   * to `namespace`, replication, Sentinel) with passwords derived from
   * `MN_REDIS_PASSWORD`, and use them for replication and Sentinel.
   */
  acl?: { runtimeUser: string; namespace: string } | undefined;
  /** `--tls-cert-file`, `--tls-key-file`, `--tls-ca-cert-file`: serve and speak TLS only. */
  tls?: BoxTls | undefined;
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
  /** With `--acl`: the runtime's environment file (user and derived password, mode 0600). */
  readonly runtimeEnvFile?: string | undefined;
}

/** Runs `join`. */
export async function join(options: JoinOptions): Promise<JoinResult> {
  const started: Array<{ endpoint: Endpoint; auth: ConnectOptions }> = [];
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

async function joinSteps(
  options: JoinOptions,
  started: Array<{ endpoint: Endpoint; auth: ConnectOptions }>,
): Promise<JoinResult> {
  const self = { host: options.selfHost, port: options.redisPort };
  const selfSentinel = { host: options.selfHost, port: options.sentinelPort };
  const selfAddress = formatEndpoint(self);
  const warnings = topologyWarnings(options.sentinels.length, options.quorum);
  if (options.password === undefined) {
    warnings.push(
      `MN_REDIS_PASSWORD is not set: Redis ${selfAddress} and Sentinel ${
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

  options.report(`join: ensuring redis-server on ${selfAddress}`);
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

  // Who is primary? Ask every listed sentinel and wait for all answers.
  const sentinels =
    options.sentinels.some((s) => formatEndpoint(s) === formatEndpoint(selfSentinel))
      ? options.sentinels
      : [...options.sentinels, selfSentinel];
  const found = await findPrimary(options, sentinels, selfSentinel, self);
  const primary = found.primary;
  const bootstrapped = found.bootstrapped;

  const isPrimary = formatEndpoint(primary) === selfAddress;
  await using redis = await RedisConnection.connect(self, redisAuth(options));
  // ACL users first: a replica authenticates to its primary as the replication user.
  let runtimeEnvPath: string | undefined;
  if (options.acl !== undefined && options.password !== undefined) {
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
    runtimeEnvPath = `${options.dataDir}/mn-runtime.env`;
    await Deno.writeTextFile(runtimeEnvPath, runtimeEnvFile(users[0]!), { mode: 0o600 });
    await Deno.chmod(runtimeEnvPath, 0o600);
    options.report(
      `join: ACL users ${
        users.map((u) => u.name).join(", ")
      } set; the runtime's credentials are in ${runtimeEnvPath}`,
    );
  }
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
    options.report(`join: making ${selfAddress} a replica of ${formatEndpoint(primary)}`);
    await redis.send(["REPLICAOF", primary.host, primary.port]);
  }
  await redis.send(["CONFIG", "REWRITE"]).catch(() => {});

  await configureSentinel(options, selfSentinel, primary);

  // Wait until the roles are confirmed; the link state is reported when it changes. A fresh
  // connection per look: Sentinel kills a node's clients when it reconfigures it (a failover
  // during the join), and a killed connection must not end the wait.
  let lastLink: string | undefined;
  await waitFor(async () => {
    await using look = await RedisConnection.connect(self, redisAuth(options));
    const now = parseInfo(replyToString(await look.send(["INFO", "replication"])) ?? "");
    if (isPrimary) {
      return now.get("role") === "master"
        ? { done: true, value: undefined }
        : { done: false, observed: `role ${now.get("role")}` };
    }
    const link = now.get("master_link_status");
    if (link !== lastLink) {
      options.report(`join: replication link to ${formatEndpoint(primary)}: ${link}`);
      lastLink = link;
    }
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
    ...sentinelAuth(options),
  });
  await waitFor(async () => {
    const m = replyToMap(await sentinel.send(["SENTINEL", "MASTER", options.masterName]));
    const flags = replyToString(m.get("flags") ?? null) ?? "";
    const seen = formatHostPort(
      replyToString(m.get("ip") ?? null),
      replyToString(m.get("port") ?? null),
    );
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
    ...(runtimeEnvPath === undefined ? {} : { runtimeEnvFile: runtimeEnvPath }),
  };
}

/** Default of `--peer-timeout`. */
export const DEFAULT_PEER_TIMEOUT_MS = 120_000;

/** How often the sentinels are asked again while waiting for peers. */
const PEER_POLL_MS = 500;

/**
 * Finds the cluster's primary, waiting for peers that have not joined yet, so
 * the documented join works on every box in any order without a flag:
 * - an answering sentinel knows the master: that is the primary;
 * - every listed sentinel answers and none knows it: the box whose sentinel is
 *   listed first bootstraps, every other box waits for its primary;
 * - some do not answer and no answering one knows it: wait up to
 *   `--peer-timeout`, then bootstrap with `--bootstrap`, else refuse.
 * Two boxes never both bootstrap: only the first-listed box does without
 * `--bootstrap`, and it does so only once every listed sentinel has answered
 * that it knows no master.
 */
async function findPrimary(
  options: JoinOptions,
  sentinels: readonly Endpoint[],
  selfSentinel: Endpoint,
  self: Endpoint,
): Promise<{ primary: Endpoint; bootstrapped: boolean }> {
  const selfSentinelAddress = formatEndpoint(selfSentinel);
  const first = sentinels[0] === undefined ? "" : formatEndpoint(sentinels[0]);
  const peerTimeoutMs = options.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;
  const deadline = performance.now() + peerTimeoutMs;
  await using resolver = new SentinelResolver({
    sentinels,
    masterName: options.masterName,
    ...sentinelAuth(options),
    perSentinelTimeoutMs: 1000,
  });
  let lastState = "";
  const say = (state: string, line: string): void => {
    if (state !== lastState) options.report(line);
    lastState = state;
  };
  while (true) {
    options.signal?.throwIfAborted();
    try {
      const decision = await resolver.resolve({ waitAll: true, signal: options.signal });
      options.report(
        `join: sentinels report primary ${
          formatEndpoint(decision.primary)
        } (config-epoch ${decision.configEpoch})`,
      );
      return { primary: decision.primary, bootstrapped: false };
    } catch (error) {
      if (error instanceof NoSentinelReachableError && error.permanent) throw error;
      if (!(error instanceof MasterUnknownError) && !(error instanceof NoSentinelReachableError)) {
        throw error;
      }
      const answered = new Set(error instanceof MasterUnknownError ? error.answered : []);
      const silent = sentinels.map(formatEndpoint).filter((s) => !answered.has(s));
      const bootstrap = (why: string): { primary: Endpoint; bootstrapped: boolean } => {
        options.report(
          `join: no primary known for "${options.masterName}" (${why}); bootstrapping ${
            formatEndpoint(self)
          } as primary`,
        );
        return { primary: self, bootstrapped: true };
      };
      if (silent.length === 0) {
        if (first === selfSentinelAddress) return bootstrap("every listed sentinel answered");
        say(
          "wait-first",
          `join: every listed sentinel answered and none knows "${options.masterName}"; ` +
            `waiting for the first listed box (${first}) to bootstrap the primary`,
        );
      } else if (options.bootstrap) {
        return bootstrap(`--bootstrap, ${silent.length} of ${sentinels.length} did not answer`);
      } else {
        say(
          `wait-silent:${silent.join(",")}`,
          `join: waiting for sentinel(s) ${
            silent.join(", ")
          } (${answered.size} of ${sentinels.length} ` +
            `answered, none knows "${options.masterName}"); up to ${
              Math.round(peerTimeoutMs / 1000)
            } s (--peer-timeout)`,
        );
      }
      if (performance.now() >= deadline) {
        throw new RedisHaError(
          "MASTER_UNKNOWN",
          silent.length === 0
            ? `Every listed sentinel answered but none learned a primary for "${options.masterName}" ` +
              `within --peer-timeout (${
                Math.round(peerTimeoutMs / 1000)
              } s): the first listed box ` +
              `(${first}) bootstraps the cluster, so run the same join there`
            : `No answering sentinel knows "${options.masterName}", and ${silent.length} of ` +
              `${sentinels.length} sentinels (${silent.join(", ")}) did not answer within ` +
              `--peer-timeout (${
                Math.round(peerTimeoutMs / 1000)
              } s). Refusing to make this box the ` +
              "primary: a sentinel that did not answer may know a primary, and two primaries split " +
              "the cluster. Run the same join on those boxes, or, if this box is the first of a new " +
              "cluster whose peers join later, run again with --bootstrap",
        );
      }
      await delay(PEER_POLL_MS, options.signal);
    }
  }
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
