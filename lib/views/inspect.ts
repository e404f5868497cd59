/**
 * `mn-redis-ha inspect nodes|topology|leases|jobs`: what the cluster looks
 * like now, with the warnings of the user doc's operational notes and more.
 *
 * @module
 */

import { waitBudgetWarning } from "../ha/wait_budget.ts";
import { RedisHaClient } from "../ha/client.ts";
import type { Config } from "../ha/config.ts";
import { RedisConnection } from "../protocol/connection.ts";
import { formatEndpoint, formatHostPort, parseEndpoint } from "../protocol/endpoint.ts";
import { ReplyError } from "../common/errors.ts";
import { parseInfo, replicasFromInfo } from "../protocol/info.ts";
import type { JobStatus } from "../state/jobs.ts";
import { LEADER_LEASE } from "../state/keys.ts";
import { observeLease } from "../state/lease.ts";
import { replyToMap, replyToNumber, replyToString, type RespReply } from "../protocol/resp.ts";
import { StateStore } from "../state/state_store.ts";

/** One sentinel in the topology view. */
export interface SentinelView {
  /** `host:port`. */
  readonly address: string;
  /** Whether it answered. */
  readonly reachable: boolean;
  /** The primary it reports. */
  readonly reports: string | null;
  /** Its config-epoch for the master. */
  readonly configEpoch: number | null;
  /** Its quorum setting. */
  readonly quorum: number | null;
  /** `SENTINEL CKQUORUM` result. */
  readonly ckquorum: string | null;
  /** Why it did not answer. */
  readonly error: string | null;
}

/** The `inspect topology --json` document. */
export interface TopologyView {
  /** `single` or `sentinel`. */
  readonly mode: string;
  /** The confirmed primary. */
  readonly primary: {
    readonly address: string;
    readonly role: string;
    readonly replid: string;
    readonly configEpoch: number | null;
  };
  /** Replicas as the primary reports them. */
  readonly replicas: readonly {
    readonly address: string;
    readonly state: string;
    readonly lagSeconds: number;
    readonly offsetLag: number;
  }[];
  /** Every sentinel asked. */
  readonly sentinels: readonly SentinelView[];
  /** Every known node that says it is a master. */
  readonly claimingMaster: readonly string[];
  /** The leader lease holder, or null. */
  readonly leader: string | null;
  /** What needs attention. */
  readonly warnings: readonly string[];
}

const BRIDGE_RANGES: readonly [string, number, number][] = [
  ["172.16.0.0/12 (Docker bridge networks)", ipv4ToNumber("172.16.0.0")!, 12],
  ["10.88.0.0/16 (Podman bridge)", ipv4ToNumber("10.88.0.0")!, 16],
];

function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    return undefined;
  }
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** The container-bridge range an address falls in, if any. */
export function bridgeRange(host: string): string | undefined {
  const n = ipv4ToNumber(host);
  if (n === undefined) return undefined;
  for (const [label, base, bits] of BRIDGE_RANGES) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if (((n & mask) >>> 0) === ((base & mask) >>> 0)) return label;
  }
  return undefined;
}

/** Lag beyond which a replica is reported. */
export const LAG_WARNING = { seconds: 1, bytes: 1024 * 1024 } as const;

/**
 * Collects the topology view, through `client` when given (a long-lived
 * watcher's, kept open) or a client of its own.
 */
export async function inspectTopology(
  config: Config,
  client?: RedisHaClient,
): Promise<TopologyView> {
  await using store = client === undefined
    ? await StateStore.connect(config)
    : new StateStore(client);
  const info = parseInfo(
    replyToString(await store.client.command(["INFO", "replication"], { idempotent: true })) ??
      "",
  );
  // Read after the command: it is the primary that answered.
  const primary = store.client.primary!;
  const replicas = replicasFromInfo(info).map((r) => ({
    address: r.address,
    state: r.state,
    lagSeconds: r.lagSeconds,
    offsetLag: r.offsetLag,
  }));
  const sentinels: SentinelView[] = [];
  const known = new Set<string>([primary.address, ...replicas.map((r) => r.address)]);
  if (config.haMode === "sentinel") {
    for (const s of store.client.sentinels) sentinels.push(await inspectSentinel(config, s, known));
  }
  const claimingMaster: string[] = [];
  for (const address of known) {
    const endpoint = parseEndpoint(address);
    if (typeof endpoint === "string") continue;
    try {
      await using conn = await RedisConnection.connect(endpoint, {
        password: config.password,
        username: config.username,
        tls: config.tls,
        connectTimeoutMs: 1000,
      });
      const role = await conn.send(["ROLE"], { timeoutMs: 1000 });
      if (Array.isArray(role) && replyToString(role[0]) === "master") claimingMaster.push(address);
    } catch {
      // Unreachable nodes do not claim anything.
    }
  }
  const leader = await observeLease(store, LEADER_LEASE).catch(() => null);
  const view = {
    mode: config.haMode,
    primary: {
      address: primary.address,
      role: primary.role,
      replid: primary.replid,
      configEpoch: primary.configEpoch ?? null,
    },
    replicas,
    sentinels,
    claimingMaster: claimingMaster.sort(),
    leader: leader?.holder ?? null,
  };
  return { ...view, warnings: topologyWarnings(view, config) };
}

async function inspectSentinel(
  config: Config,
  sentinel: { host: string; port: number },
  known: Set<string>,
): Promise<SentinelView> {
  const address = formatEndpoint(sentinel);
  const name = config.sentinelMaster!;
  try {
    await using conn = await RedisConnection.connect(sentinel, {
      password: config.sentinelPassword,
      username: config.sentinelUsername,
      tls: config.sentinelTls,
      connectTimeoutMs: 1000,
    });
    const m = replyToMap(await conn.send(["SENTINEL", "MASTER", name], { timeoutMs: 1000 }));
    const replicas =
      (await conn.send(["SENTINEL", "REPLICAS", name], { timeoutMs: 1000 })) as RespReply[];
    for (const r of replicas) {
      const f = replyToMap(r);
      if (!/s_down|disconnected/.test(replyToString(f.get("flags") ?? null) ?? "")) {
        known.add(replyToString(f.get("name") ?? null) ?? "");
      }
    }
    let ckquorum: string;
    try {
      ckquorum =
        replyToString(await conn.send(["SENTINEL", "CKQUORUM", name], { timeoutMs: 1000 })) ?? "";
    } catch (error) {
      ckquorum = error instanceof ReplyError ? error.reply : String(error);
    }
    return {
      address,
      reachable: true,
      reports: formatHostPort(
        replyToString(m.get("ip") ?? null),
        replyToString(m.get("port") ?? null),
      ),
      configEpoch: replyToNumber(m.get("config-epoch") ?? 0),
      quorum: replyToNumber(m.get("quorum") ?? 0),
      ckquorum,
      error: null,
    };
  } catch (error) {
    return {
      address,
      reachable: false,
      reports: null,
      configEpoch: null,
      quorum: null,
      ckquorum: null,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

/** The warnings for a topology view (pure). */
export function topologyWarnings(
  view: Omit<TopologyView, "warnings">,
  config: Pick<Config, "haMode"> & Partial<Pick<Config, "waitReplicas">>,
): string[] {
  const warnings: string[] = [];
  if (config.haMode === "sentinel") {
    if (view.sentinels.length < 3) {
      warnings.push(
        `only ${view.sentinels.length} sentinel(s): production needs at least three sentinel voters`,
      );
    }
    for (const s of view.sentinels) {
      if (!s.reachable) warnings.push(`sentinel ${s.address} is unreachable: ${s.error}`);
      else if (s.ckquorum !== null && !s.ckquorum.startsWith("OK")) {
        warnings.push(`sentinel ${s.address}: ${s.ckquorum}`);
      }
    }
    if (view.sentinels.some((s) => s.quorum === 1)) {
      warnings.push(
        "quorum is 1: a single sentinel can trigger a failover; two boxes can split-brain in a partition",
      );
    }
    const reports = new Set(view.sentinels.filter((s) => s.reachable).map((s) => s.reports));
    if (reports.size > 1) {
      warnings.push(`sentinels disagree on the primary: ${[...reports].join(" vs ")}`);
    }
  }
  for (const r of view.replicas) {
    if (r.state !== "online") warnings.push(`replica ${r.address} is ${r.state}, not online`);
    else if (r.lagSeconds > LAG_WARNING.seconds || r.offsetLag > LAG_WARNING.bytes) {
      warnings.push(
        `replica ${r.address} lags: ${r.lagSeconds}s since its last ack, ${r.offsetLag} bytes behind`,
      );
    }
  }
  const budget = waitBudgetWarning(config.waitReplicas ?? 0, view.replicas);
  if (budget !== undefined) warnings.push(budget);
  if (view.claimingMaster.length > 1) {
    warnings.push(
      `more than one node claims to be master: ${view.claimingMaster.join(", ")} (split brain)`,
    );
  }
  const addresses = [
    view.primary.address,
    ...view.replicas.map((r) => r.address),
    ...view.sentinels.map((s) => s.address),
  ];
  for (const address of addresses) {
    const host = address.slice(0, address.lastIndexOf(":"));
    const range = bridgeRange(host);
    if (range !== undefined) {
      warnings.push(
        `${address} is in ${range}: announce the box's reachable IP instead (replica-announce-ip / sentinel announce-ip)`,
      );
    }
  }
  if (view.leader === null) warnings.push("no leader: nobody holds the leader lease");
  return warnings;
}

/** One row of `inspect nodes`. */
export interface NodeRow {
  /** Node id. */
  readonly id: string;
  /** up, down or left. */
  readonly status: string;
  /** Milliseconds since its last heartbeat. */
  readonly lastSeenAgeMs: number;
  /** Whether it holds the leader lease. */
  readonly leader: boolean;
  /** Its registration metadata. */
  readonly meta: unknown;
}

/** Collects `inspect nodes`. */
export async function inspectNodes(
  config: Config,
): Promise<{ nodes: NodeRow[]; leader: string | null; warnings: string[] }> {
  await using store = await StateStore.connect(config);
  const leader = await observeLease(store, LEADER_LEASE);
  const nodes = (await store.nodes.list()).map((n) => ({
    id: n.id,
    status: n.status,
    lastSeenAgeMs: n.lastSeenAgeMs,
    leader: leader !== null && leader.holder.split(":")[0] === n.id,
    meta: n.meta,
  }));
  const warnings: string[] = [];
  if (leader === null) warnings.push("no leader: nobody holds the leader lease");
  for (const n of nodes) {
    if (n.status === "down") {
      warnings.push(`node ${n.id} is down (last seen ${Math.round(n.lastSeenAgeMs)}ms ago)`);
    }
  }
  return { nodes, leader: leader?.holder ?? null, warnings };
}

/** Collects `inspect leases`: every lease in the namespace. */
export async function inspectLeases(
  config: Config,
): Promise<{ leases: unknown[]; warnings: string[] }> {
  await using store = await StateStore.connect(config);
  const prefix = store.keys.lease("");
  const names: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] =
      (await store.client.command(["SCAN", cursor, "MATCH", `${prefix}*`, "COUNT", 500], {
        idempotent: true,
      })) as [RespReply, RespReply[]];
    cursor = replyToString(next) ?? "0";
    for (const k of keys) names.push((replyToString(k) ?? "").slice(prefix.length));
  } while (cursor !== "0");
  const leases = (await Promise.all(names.sort().map((n) => observeLease(store, n)))).filter((l) =>
    l !== null
  );
  const warnings = leases.some((l) => l!.lease === LEADER_LEASE)
    ? []
    : ["no leader: nobody holds the leader lease"];
  return { leases, warnings };
}

/** Collects `inspect jobs` (first page). */
export async function inspectJobs(
  config: Config,
  options: { status?: JobStatus | undefined; limit: number },
): Promise<{ jobs: unknown[]; nextCursor: string | null }> {
  await using client = await RedisHaClient.connect(config);
  const store = new StateStore(client);
  const page = await store.jobs.list({ status: options.status, limit: options.limit });
  return {
    jobs: page.jobs.map((j) => ({
      id: j.id,
      status: j.status,
      version: j.version,
      updatedAt: new Date(j.updatedAt).toISOString(),
    })),
    nextCursor: page.nextCursor ?? null,
  };
}

/** Renders rows as an aligned table. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** Formats warnings, yellow when colour is allowed. */
export function formatWarnings(warnings: readonly string[], colour: boolean): string {
  return warnings.map((w) => colour ? `\x1b[33mwarning:\x1b[0m ${w}` : `warning: ${w}`).join("\n");
}
