/**
 * `mn-redis-ha node start`: a long-lived MirrorNeuron runtime node (the user
 * doc's `scripts/start_cluster_node.sh`). In sentinel mode it first joins
 * the box's Redis and Sentinel to the cluster (box 1 may bootstrap the
 * primary), then registers node state, heartbeats, competes for the fenced
 * leader lease, and on SIGINT/SIGTERM releases its lease and marks itself
 * left.
 *
 * @module
 */

import { delay } from "../common/delay.ts";
import { type Config, configFromOptions, configToOptions } from "../ha/config.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { WaitError } from "../common/errors.ts";
import { LeaseHeldError } from "../common/state_errors.ts";
import { LEADER_LEASE } from "../state/keys.ts";
import { acquireLease, type Lease } from "../state/lease.ts";
import { parseInfo, replicasFromInfo } from "../protocol/info.ts";
import { libraryLogger } from "../common/log.ts";
import { replyToString } from "../protocol/resp.ts";
import { waitBudgetWarning } from "../ha/wait_budget.ts";
import { StateStore } from "../state/state_store.ts";
import { join } from "../ops/join.ts";
import { serve } from "../views/serve.ts";
import { inspectTopology } from "../views/inspect.ts";

const logger = libraryLogger("node");

/** Options of `node start`, one per flag. */
export interface NodeStartOptions {
  /** `--box1-ip`. */
  box1Ip: string;
  /** `--box2-ip`. */
  box2Ip: string;
  /** `--box`: which of the two this is. */
  box: 1 | 2;
  /** `--redis-ha-mode`. */
  haMode: "single" | "sentinel";
  /** `--redis-sentinels`. */
  sentinels: readonly Endpoint[];
  /** `--sentinel-master`. */
  sentinelMaster: string;
  /** `--redis-wait-replicas`. */
  waitReplicas: number;
  /** `--skip-redis-ha`: Redis and Sentinel are managed externally. */
  skipRedisHa: boolean;
  /** `--node-id`. */
  nodeId: string;
  /** `--redis-port` / `--sentinel-port` / `--quorum` / `--data-dir` for the join. */
  redisPort: number;
  /** Local Sentinel port. */
  sentinelPort: number;
  /** Sentinel quorum for the join. */
  quorum: number;
  /** Data dir for the join. */
  dataDir: string;
  /** Heartbeat TTL (the node heartbeats every third of it). */
  heartbeatTtlMs: number;
  /** Leader lease TTL. */
  leaseTtlMs: number;
  /** `--metrics-listen`: serve `/metrics` (with the node client's series), `/health`, `/cluster`, `/`. */
  metricsListen?: Endpoint | undefined;
}

/** What a running node's parts share. */
interface NodeRun {
  readonly options: NodeStartOptions;
  readonly store: StateStore;
  /** Marker lines for stdout (`node_started`, `node_leader`, …). */
  readonly report: (line: string) => void;
  /** Progress lines for stderr. */
  readonly progress: (line: string) => void;
  /** Aborted on SIGINT/SIGTERM: the node's normal stop. */
  readonly signal: AbortSignal;
  /** This process's holder id for the leader lease. */
  readonly holder: string;
}

/** Runs a node until `signal` aborts; `report` gets marker lines for stdout. */
export async function runNode(
  options: NodeStartOptions,
  base: Config,
  report: (line: string) => void,
  progress: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const config = await joinedConfig(options, base, progress);
  await using store = await StateStore.connect(config);
  const selfHost = options.box === 1 ? options.box1Ip : options.box2Ip;
  await using _metrics = await startMetricsServer(
    options,
    config,
    selfHost,
    store,
    progress,
    signal,
  );
  const holder = `${options.nodeId}:${crypto.randomUUID().slice(0, 8)}`;
  const run: NodeRun = { options, store, report, progress, signal, holder };
  if (!(await register(run, selfHost))) {
    // Stopped before the registration was confirmed: it may still be on the primary.
    await store.nodes.leave(options.nodeId).catch(() => {});
    report(`node_stopped id=${options.nodeId}`);
    return;
  }
  report(
    `node_started id=${options.nodeId} box=${options.box} primary=${store.client.primary?.address}`,
  );
  await warnAboutWaitBudget(run, config.waitReplicas);
  const heartbeats = heartbeat(run);
  const leadership = { lease: undefined as Lease | undefined };
  try {
    await competeForLeader(run, leadership);
  } finally {
    // Graceful stop: hand the lease back and mark the node as left.
    await leadership.lease?.release().catch(() => false);
    await heartbeats;
    await store.nodes.leave(options.nodeId).catch((error) => {
      logger.warn("Node {node} could not mark itself left: {error}", {
        node: options.nodeId,
        error: String(error),
      });
    });
    report(`node_stopped id=${options.nodeId}`);
  }
}

/**
 * In sentinel mode, joins the box's Redis and Sentinel to the cluster
 * (unless `--skip-redis-ha`; box 1 may bootstrap) and returns the client
 * configuration the node runs with.
 */
async function joinedConfig(
  options: NodeStartOptions,
  base: Config,
  progress: (line: string) => void,
): Promise<Config> {
  if (options.haMode !== "sentinel") {
    return configFromOptions({ ...configToOptions(base), waitReplicas: options.waitReplicas });
  }
  if (!options.skipRedisHa) {
    await join({
      selfHost: options.box === 1 ? options.box1Ip : options.box2Ip,
      redisPort: options.redisPort,
      sentinelPort: options.sentinelPort,
      sentinels: options.sentinels,
      masterName: options.sentinelMaster,
      quorum: options.quorum,
      dataDir: options.dataDir,
      downAfterMs: 5000,
      failoverTimeoutMs: 60_000,
      bootstrap: options.box === 1,
      timeoutMs: 60_000,
      password: base.password,
      sentinelPassword: base.sentinelPassword,
      report: progress,
    });
  }
  return configFromOptions({
    ...configToOptions(base),
    haMode: "sentinel",
    sentinels: options.sentinels.map(formatEndpoint),
    sentinelMaster: options.sentinelMaster,
    waitReplicas: options.waitReplicas,
  });
}

/**
 * Registers the node's state. With WAIT on, the first box of a cluster
 * cannot confirm writes until a replica joins: it waits, saying so once (and
 * again only when the reason changes, or every 30 s). False when stopped first.
 */
async function register(run: NodeRun, selfHost: string): Promise<boolean> {
  const { options, store, signal } = run;
  const waitingSince = performance.now();
  let said: { reason: string; at: number } | undefined;
  while (true) {
    try {
      await store.nodes.register(options.nodeId, {
        ttlMs: options.heartbeatTtlMs,
        meta: { box: options.box, ip: selfHost, holder: run.holder, pid: Deno.pid },
      });
      return true;
    } catch (error) {
      if (!(error instanceof WaitError)) throw error;
      const now = performance.now();
      if (said === undefined || said.reason !== error.message || now - said.at >= 30_000) {
        const waited = said === undefined
          ? ""
          : ` (still waiting after ${Math.round((now - waitingSince) / 1000)} s)`;
        run.progress(
          `node: waiting for a replica to confirm the registration${waited}: ${error.message}`,
        );
        said = { reason: error.message, at: now };
      }
      await delay(1000, signal).catch(() => {});
      if (signal.aborted) return false;
    }
  }
}

/** Says it at start-up: a WAIT that needs every replica stops durable writes when one box goes. */
async function warnAboutWaitBudget(run: NodeRun, waitReplicas: number): Promise<void> {
  const replication = await run.store.client.command(["INFO", "replication"], { idempotent: true })
    .then((r) => replyToString(r) ?? "").catch(() => undefined);
  const budget = replication === undefined
    ? undefined
    : waitBudgetWarning(waitReplicas, replicasFromInfo(parseInfo(replication)));
  if (budget !== undefined) {
    logger.warn("Node {node}: {warning}", { node: run.options.nodeId, warning: budget });
  }
}

/** Heartbeats (hot writes) every third of the TTL until the node stops. */
async function heartbeat(run: NodeRun): Promise<void> {
  const { options, store, signal } = run;
  while (!signal.aborted) {
    try {
      await delay(Math.max(100, Math.floor(options.heartbeatTtlMs / 3)), signal);
      await store.nodes.heartbeat(options.nodeId);
    } catch (error) {
      if (signal.aborted) return;
      logger.warn("Node {node} heartbeat failed: {error}", {
        node: options.nodeId,
        error: String(error),
      });
    }
  }
}

/**
 * Competes for the fenced leader lease until the node stops: holds it while
 * the keep-alive does, campaigns again when it is lost. The lease held at the
 * stop is left in `leadership` for the caller to release.
 */
async function competeForLeader(
  run: NodeRun,
  leadership: { lease: Lease | undefined },
): Promise<void> {
  const { options, store, signal, report } = run;
  while (!signal.aborted) {
    let lease: Lease;
    try {
      lease = await acquireLease(store, LEADER_LEASE, {
        holder: run.holder,
        ttlMs: options.leaseTtlMs,
        keepAlive: {},
      });
    } catch (error) {
      if (!(error instanceof LeaseHeldError)) {
        logger.warn("Node {node} could not campaign for leader: {error}", {
          node: options.nodeId,
          error: String(error),
        });
      }
      await delay(Math.floor(options.leaseTtlMs / 4), signal).catch(() => {});
      continue;
    }
    leadership.lease = lease;
    report(`node_leader id=${options.nodeId} token=${lease.token}`);
    logger.info("Node {node} is the leader (fencing token {token})", {
      node: options.nodeId,
      token: lease.token,
    });
    // One listener on a signal of this lease alone: nothing accumulates on the node's own signal.
    await untilAborted(AbortSignal.any([signal, lease.signal]));
    if (lease.lost && !signal.aborted) {
      logger.warn("Node {node} lost the leader lease: {reason}", {
        node: options.nodeId,
        reason: String(lease.signal.reason),
      });
      report(`node_lost_leadership id=${options.nodeId}`);
      leadership.lease = undefined;
    }
  }
}

/**
 * `--metrics-listen`: the box's endpoints plus the node client's own series,
 * until the node stops. Nothing when the flag is absent.
 */
async function startMetricsServer(
  options: NodeStartOptions,
  config: Config,
  selfHost: string,
  store: StateStore,
  progress: (line: string) => void,
  signal: AbortSignal,
): Promise<AsyncDisposable> {
  const listen = options.metricsListen;
  if (listen === undefined) return { [Symbol.asyncDispose]: () => Promise.resolve() };
  const stop = new AbortController();
  const stopping = AbortSignal.any([signal, stop.signal]);
  const listening = Promise.withResolvers<void>();
  const server = serve({
    listen,
    redis: { host: selfHost, port: options.redisPort },
    sentinels: options.sentinels,
    masterName: options.sentinelMaster,
    config,
    signal: stopping,
    onListen: (address) => {
      progress(`node: metrics on http://${address}/`);
      listening.resolve();
    },
    clientMetrics: (format) => store.client.renderMetrics(format),
    topology: () => inspectTopology(config, store.client),
  });
  await Promise.race([listening.promise, server]);
  return {
    [Symbol.asyncDispose]: async () => {
      stop.abort();
      await server.catch(() => {});
    },
  };
}

/** Resolves when `signal` aborts. */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
