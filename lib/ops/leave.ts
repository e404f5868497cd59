/**
 * `mn-redis-ha leave`: takes this box's Redis and Sentinel out of the
 * cluster without losing an acknowledged write (the user doc's
 * `scripts/redis_ha.sh leave`).
 *
 * If the local Redis is primary: writes are paused on it (`CLIENT PAUSE …
 * WRITE`), the replicas catch up, Sentinel fails over, a majority of
 * sentinels and `ROLE` confirm the new primary, and the paused clients are
 * disconnected (their writes never ran; they retry on the new primary).
 * Then the local Redis is detached (`REPLICAOF NO ONE`), the local
 * Sentinel's monitor removed, and every other sentinel reset one at a time
 * so none pulls the detached Redis back as a replica.
 *
 * @module
 */

import { type BoxOptions, redisAuth, sentinelAuth } from "./daemon.ts";
import { RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint, formatHostPort } from "../protocol/endpoint.ts";
import { RedisHaError, ReplyError } from "../common/errors.ts";
import { parseInfo, replicasFromInfo } from "../protocol/info.ts";
import { replyToMap, replyToNumber, replyToString, type RespReply } from "../protocol/resp.ts";
import { SentinelResolver } from "../ha/sentinel_resolver.ts";
import { waitFor } from "../common/wait_for.ts";

/** Options of `leave`, one per flag. */
export interface LeaveOptions extends BoxOptions {
  /** `--purge-local`: FLUSHDB after detaching. */
  purgeLocal: boolean;
  /**
   * `--stop`: once detached, shut the local Sentinel and Redis down (Redis
   * saves its data first, unless `--purge-local`) and wait until both ports
   * are closed.
   */
  stop?: boolean | undefined;
}

/** What `leave` did. */
export interface LeaveResult {
  /** The role the local Redis had. */
  readonly wasPrimary: boolean;
  /** The cluster primary afterwards. */
  readonly primary: string;
  /** Whether the local data was flushed. */
  readonly purged: boolean;
  /** Whether the local Redis and Sentinel were shut down (`--stop`). */
  readonly stopped: boolean;
  /** Sentinels that were reset. */
  readonly resetSentinels: readonly string[];
}

/** Runs `leave`. */
export async function leave(options: LeaveOptions): Promise<LeaveResult> {
  const began = performance.now();
  const userReport = options.report;
  options = {
    ...options,
    report: (line) => userReport(`${line} (+${((performance.now() - began) / 1000).toFixed(1)}s)`),
  };
  const self = { host: options.selfHost, port: options.redisPort };
  const selfAddress = formatEndpoint(self);
  const selfSentinel = { host: options.selfHost, port: options.sentinelPort };
  const others = options.sentinels.filter((s) =>
    formatEndpoint(s) !== formatEndpoint(selfSentinel)
  );

  await using local = await RedisConnection.connect(self, redisAuth(options)).catch(
    (error) => {
      throw new RedisHaError(
        "CONFIG",
        `No Redis answers at ${selfAddress}; this box never joined (or its Redis is down): ${error.message}`,
      );
    },
  );
  const localSentinel = await RedisConnection.connect(selfSentinel, {
    ...sentinelAuth(options),
  })
    .catch(() => undefined);
  try {
    // A box that never joined: its sentinel does not monitor the master and no sentinel knows it.
    const monitors = localSentinel === undefined
      ? false
      : await localSentinel.send(["SENTINEL", "MASTER", options.masterName]).then(() => true, () =>
        false);
    if (!monitors && !(await knownToSentinels(options, selfAddress))) {
      throw new RedisHaError(
        "CONFIG",
        `This box never joined "${options.masterName}": its sentinel ${
          formatEndpoint(selfSentinel)
        } ` +
          `does not monitor it and no listed sentinel knows ${selfAddress}`,
      );
    }

    await using resolver = new SentinelResolver({
      sentinels: options.sentinels,
      masterName: options.masterName,
      ...sentinelAuth(options),
      perSentinelTimeoutMs: 1000,
    });
    let decision = await resolver.resolve({ waitAll: true, signal: options.signal });
    const wasPrimary = formatEndpoint(decision.primary) === selfAddress;
    if (wasPrimary) {
      decision = await handOver(options, local, resolver, selfAddress);
    }
    options.report(`leave: detaching ${selfAddress} (REPLICAOF NO ONE)`);
    await local.send(["REPLICAOF", "NO", "ONE"]);
    await local.send(["CLIENT", "UNPAUSE"]).catch(() => {});
    await local.send(["CONFIG", "REWRITE"]).catch(() => {});
    if (localSentinel !== undefined) {
      await localSentinel.send(["SENTINEL", "REMOVE", options.masterName]).catch(() => {});
      options.report(
        `leave: local sentinel ${
          formatEndpoint(selfSentinel)
        } no longer monitors "${options.masterName}"`,
      );
    }
    let purged = false;
    if (options.purgeLocal) {
      await local.send(["FLUSHDB"]);
      purged = true;
      options.report(`leave: flushed the local database (--purge-local)`);
    }
    const resetSentinels = await resetOthers(
      options,
      others,
      decision.primary,
      selfAddress,
      formatEndpoint(selfSentinel),
    );
    // Verify: detached, and no remaining sentinel lists it.
    const role = await local.send(["ROLE"]);
    if (!Array.isArray(role) || replyToString(role[0]) !== "master") {
      throw new RedisHaError(
        "ROLE_MISMATCH",
        `${selfAddress} did not stay detached: ROLE ${JSON.stringify(role)}`,
      );
    }
    const stopped = options.stop === true;
    if (stopped) {
      await shutDown(localSentinel, selfSentinel, [], options);
      // Data is kept: saved to disk first (unless it was purged on purpose).
      await shutDown(local, self, [options.purgeLocal ? "NOSAVE" : "SAVE"], options);
    }
    return {
      wasPrimary,
      primary: formatEndpoint(decision.primary),
      purged,
      stopped,
      resetSentinels,
    };
  } finally {
    await localSentinel?.close();
  }
}

/** `SHUTDOWN` a local daemon and waits until its port is closed. */
async function shutDown(
  conn: RedisConnection | undefined,
  endpoint: Endpoint,
  args: readonly string[],
  options: LeaveOptions,
): Promise<void> {
  if (conn === undefined) return;
  const where = formatEndpoint(endpoint);
  // The server closes the connection instead of replying when it goes.
  await conn.send(["SHUTDOWN", ...args]).catch((error) => {
    if (error instanceof ReplyError) {
      throw new RedisHaError("CONFIG", `${where} refused SHUTDOWN: ${error.reply}`, {
        cause: error,
      });
    }
  });
  await waitFor(async () => {
    const open = await Deno.connect({ hostname: endpoint.host, port: endpoint.port }).then(
      (c) => {
        c.close();
        return true;
      },
      () => false,
    );
    return open
      ? { done: false, observed: `${where} still accepts connections` }
      : { done: true, value: undefined };
  }, {
    what: `${where} to stop`,
    timeoutMs: options.timeoutMs,
    intervalMs: 50,
    signal: options.signal,
  });
  options.report(`leave: stopped ${where}`);
}

async function knownToSentinels(options: LeaveOptions, selfAddress: string): Promise<boolean> {
  for (const s of options.sentinels) {
    try {
      await using conn = await RedisConnection.connect(s, {
        ...sentinelAuth(options),
        connectTimeoutMs: 1000,
      });
      const master = replyToMap(
        await conn.send(["SENTINEL", "MASTER", options.masterName], { timeoutMs: 1000 }),
      );
      if (
        `${replyToString(master.get("ip") ?? null)}:${
          replyToString(master.get("port") ?? null)
        }` === selfAddress
      ) return true;
      const replicas = await conn.send(["SENTINEL", "REPLICAS", options.masterName], {
        timeoutMs: 1000,
      });
      if (
        (replicas as RespReply[]).some((r) =>
          replyToString(replyToMap(r).get("name") ?? null) === selfAddress
        )
      ) return true;
    } catch {
      // Unreachable or unaware: keep looking.
    }
  }
  return false;
}

async function handOver(
  options: LeaveOptions,
  local: RedisConnection,
  resolver: SentinelResolver,
  selfAddress: string,
): ReturnType<SentinelResolver["resolve"]> {
  const info = parseInfo(replyToString(await local.send(["INFO", "replication"])) ?? "");
  const online = replicasFromInfo(info).filter((r) => r.state === "online");
  if (online.length === 0) {
    throw new RedisHaError(
      "ROLE_MISMATCH",
      `${selfAddress} is the primary and has no online replica to fail over to; join another box first ` +
        "(leaving now would take the cluster's data offline)",
    );
  }
  const pauseMs = options.timeoutMs + 5000;
  options.report(
    `leave: ${selfAddress} is primary; pausing writes on it (CLIENT PAUSE ${pauseMs} WRITE)`,
  );
  await local.send(["CLIENT", "PAUSE", pauseMs, "WRITE"]);
  try {
    const offset = Number(
      parseInfo(replyToString(await local.send(["INFO", "replication"])) ?? "").get(
        "master_repl_offset",
      ),
    );
    await waitFor(async () => {
      const now = parseInfo(replyToString(await local.send(["INFO", "replication"])) ?? "");
      const caught = replicasFromInfo(now).filter((r) => r.offset >= offset).length;
      return caught > 0
        ? { done: true, value: undefined }
        : { done: false, observed: `no replica at offset ${offset} yet` };
    }, {
      what: "a replica to catch up with every acknowledged write",
      timeoutMs: options.timeoutMs,
      intervalMs: 50,
      signal: options.signal,
    });
    const asked = await askFailover(options);
    options.report(`leave: sentinel ${asked} started a failover; waiting for a new primary`);
    const decision = await waitFor(async () => {
      const d = await resolver.resolve({ waitAll: true, signal: options.signal });
      const agreeing = d.agreeing.length;
      const majority = Math.floor(options.sentinels.length / 2) + 1;
      if (
        formatEndpoint(d.primary) === selfAddress ||
        agreeing < Math.min(majority, d.answers.filter((a) => a.kind === "master").length)
      ) {
        return {
          done: false,
          observed: `primary ${formatEndpoint(d.primary)} reported by ${agreeing}`,
        };
      }
      await using conn = await RedisConnection.connect(d.primary, {
        ...redisAuth(options),
        connectTimeoutMs: 1000,
      });
      const role = await conn.send(["ROLE"]);
      return Array.isArray(role) && replyToString(role[0]) === "master"
        ? { done: true, value: d }
        : { done: false, observed: `${formatEndpoint(d.primary)} not yet master` };
    }, {
      what: "the sentinels to agree on a new primary",
      timeoutMs: options.timeoutMs,
      intervalMs: 200,
      signal: options.signal,
    });
    options.report(
      `leave: new primary ${formatEndpoint(decision.primary)} confirmed by sentinels and ROLE`,
    );
    // Until the failover has ended, its leader keeps reconfiguring replicas (this Redis included)
    // and a SENTINEL RESET would abort it half-way: wait until every reachable sentinel has
    // switched to the new primary and none has a failover in progress.
    await waitFailoverEnded(options, decision.primary);
    // Paused writers never ran their writes here; drop them so they retry on the new primary.
    await local.send(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    await local.send(["CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes"]).catch(() => {});
    return decision;
  } catch (error) {
    await local.send(["CLIENT", "UNPAUSE"]).catch(() => {});
    throw error;
  }
}

async function waitFailoverEnded(options: LeaveOptions, primary: Endpoint): Promise<void> {
  const want = formatEndpoint(primary);
  await waitFor(async () => {
    const pending: string[] = [];
    for (const s of options.sentinels) {
      try {
        await using conn = await RedisConnection.connect(s, {
          ...sentinelAuth(options),
          connectTimeoutMs: 500,
          signal: options.signal,
        });
        const m = replyToMap(
          await conn.send(["SENTINEL", "MASTER", options.masterName], { timeoutMs: 500 }),
        );
        const at = formatHostPort(
          replyToString(m.get("ip") ?? null),
          replyToString(m.get("port") ?? null),
        );
        const flags = replyToString(m.get("flags") ?? null) ?? "";
        if (at !== want || flags.includes("failover_in_progress")) {
          pending.push(`${formatEndpoint(s)} (${at}, ${flags})`);
        }
      } catch {
        // Unreachable (or never monitored it): it cannot be mid-failover here.
      }
    }
    return pending.length === 0
      ? { done: true, value: undefined }
      : { done: false, observed: `still switching: ${pending.join("; ")}` };
  }, {
    what: `every sentinel to finish the failover to ${want}`,
    timeoutMs: options.timeoutMs,
    intervalMs: 100,
    signal: options.signal,
  });
}

async function askFailover(options: LeaveOptions): Promise<string> {
  let last: unknown;
  for (const s of options.sentinels) {
    try {
      await using conn = await RedisConnection.connect(s, {
        ...sentinelAuth(options),
        connectTimeoutMs: 1000,
      });
      await conn.send(["SENTINEL", "FAILOVER", options.masterName], { timeoutMs: 2000 });
      return formatEndpoint(s);
    } catch (error) {
      last = error;
      if (error instanceof ReplyError && /INPROG/.test(error.reply)) return formatEndpoint(s);
    }
  }
  throw new RedisHaError(
    "NO_SENTINEL_REACHABLE",
    `No sentinel accepted SENTINEL FAILOVER ${options.masterName}: ${
      last instanceof Error ? last.message : last
    }`,
  );
}

/**
 * Resets every other sentinel at once, then waits until each has forgotten
 * this box and rediscovered the rest. At once, because a sentinel that still
 * lists the detached Redis as a replica converts it back (`REPLICAOF`) once
 * it has reported itself a master for about 8 s; resetting one at a time,
 * each waiting for a rediscovery, let a later one do so.
 */
async function resetOthers(
  options: LeaveOptions,
  others: readonly Endpoint[],
  primary: Endpoint,
  selfAddress: string,
  selfSentinel: string,
): Promise<string[]> {
  const expectedReplicas = async (): Promise<number> => {
    await using conn = await RedisConnection.connect(primary, {
      ...redisAuth(options),
      connectTimeoutMs: 1000,
    });
    const info = parseInfo(replyToString(await conn.send(["INFO", "replication"])) ?? "");
    return replicasFromInfo(info).filter((r) => r.state === "online" && r.address !== selfAddress)
      .length;
  };
  const connections: Array<{ sentinel: Endpoint; conn: RedisConnection }> = [];
  try {
    for (const s of others) {
      try {
        const conn = await RedisConnection.connect(s, {
          ...sentinelAuth(options),
          connectTimeoutMs: 1000,
          signal: options.signal,
        });
        connections.push({ sentinel: s, conn });
      } catch {
        options.report(
          `leave: warning: sentinel ${
            formatEndpoint(s)
          } is unreachable; reset it later (SENTINEL RESET ${options.masterName})`,
        );
      }
    }
    await Promise.all(
      connections.map(({ conn }) => conn.send(["SENTINEL", "RESET", options.masterName])),
    );
    await Promise.all(connections.map(async ({ sentinel: s, conn }) => {
      await waitFor(async () => {
        const replicas =
          (await conn.send(["SENTINEL", "REPLICAS", options.masterName])) as RespReply[];
        const names = replicas.map((r) => replyToString(replyToMap(r).get("name") ?? null));
        const peers =
          (await conn.send(["SENTINEL", "SENTINELS", options.masterName])) as RespReply[];
        const peerNames = peers.map((p) => {
          const m = replyToMap(p);
          return formatHostPort(
            replyToString(m.get("ip") ?? null),
            replyToString(m.get("port") ?? null),
          );
        });
        if (names.includes(selfAddress) || peerNames.includes(selfSentinel)) {
          return { done: false, observed: `still lists ${selfAddress} or ${selfSentinel}` };
        }
        // Rediscovered the rest, so it can lead a failover again.
        const master = replyToMap(await conn.send(["SENTINEL", "MASTER", options.masterName]));
        const flags = replyToString(master.get("flags") ?? null) ?? "";
        const replicaCount = replyToNumber(master.get("num-slaves") ?? 0);
        const peerCount = replyToNumber(master.get("num-other-sentinels") ?? 0);
        const wantReplicas = await expectedReplicas();
        return flags === "master" && replicaCount >= wantReplicas && peerCount >= others.length - 1
          ? { done: true, value: undefined }
          : {
            done: false,
            observed: `flags ${flags}, ${replicaCount}/${wantReplicas} replicas, ${peerCount}/${
              others.length - 1
            } peers`,
          };
      }, {
        what: `sentinel ${formatEndpoint(s)} to forget ${selfAddress}`,
        timeoutMs: options.timeoutMs,
        intervalMs: 200,
        signal: options.signal,
      });
      options.report(
        `leave: sentinel ${formatEndpoint(s)} reset and no longer lists ${selfAddress}`,
      );
    }));
    return connections.map(({ sentinel }) => formatEndpoint(sentinel));
  } finally {
    await Promise.all(connections.map(({ conn }) => conn.close()));
  }
}
