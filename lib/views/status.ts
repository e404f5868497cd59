/**
 * `mn-redis-ha status`: the confirmed primary, its replicas, the sentinels
 * and the WAIT setting.
 *
 * @module
 */

import { RedisHaClient } from "../ha/client.ts";
import type { Config } from "../ha/config.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { parseInfo, replicasFromInfo } from "../protocol/info.ts";
import type { SentinelAnswer } from "../ha/resolver_decision.ts";
import { replyToString } from "../protocol/resp.ts";
import { SentinelResolver } from "../ha/sentinel_resolver.ts";
import { waitBudgetWarning } from "../ha/wait_budget.ts";

/** One replica as the primary reports it. */
export interface ReplicaStatus {
  /** `host:port` the replica announced. */
  readonly address: string;
  /** Replication state, e.g. `online`. */
  readonly state: string;
  /** Seconds since the replica's last ack. */
  readonly lagSeconds: number;
  /** Bytes of replication stream the replica has not acknowledged. */
  readonly offsetLag: number;
}

/** One sentinel and what it said. */
export interface SentinelStatus {
  /** `host:port`. */
  readonly address: string;
  /** Whether it answered. */
  readonly answered: boolean;
  /** The primary it reports. */
  readonly reports?: string | undefined;
  /** Its config-epoch. */
  readonly configEpoch?: number | undefined;
  /** Why it did not answer, or that it does not know the master. */
  readonly error?: string | undefined;
}

/** The `status --json` document. */
export interface StatusReport {
  /** `single` or `sentinel`. */
  readonly mode: string;
  /** The node asked (single mode: `MN_REDIS_URL`; sentinel mode: the confirmed primary). */
  readonly node: string;
  /**
   * The primary, `host:port`: the node itself when it is one, else the
   * primary it replicates from (null when it does not say).
   */
  readonly primary: string | null;
  /** The node's role per `ROLE` (`master`, or `slave` for a replica in single mode). */
  readonly role: string;
  /** The primary the node replicates from, when it is a replica (null otherwise). */
  readonly replicaOf: string | null;
  /** Sentinel config-epoch of the primary (null in single mode). */
  readonly configEpoch: number | null;
  /** The primary's `master_replid`. */
  readonly replid: string;
  /** Replicas with their lag. */
  readonly replicas: readonly ReplicaStatus[];
  /** Every sentinel asked (empty in single mode). */
  readonly sentinels: readonly SentinelStatus[];
  /** The durable-write WAIT policy. */
  readonly wait: { readonly replicas: number; readonly timeoutMs: number };
  /** The key namespace. */
  readonly namespace: string;
  /** What an operator should act on (e.g. a WAIT setting that cannot lose a box). */
  readonly warnings: readonly string[];
}

/** Collects the status report; `signal` abandons it (every wait in it is bounded anyway). */
export async function collectStatus(
  config: Config,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<StatusReport> {
  const { signal } = options;
  await using client = await RedisHaClient.connect(config, { signal });
  const primary = client.primary!;
  const info = replyToString(
    await client.command(["INFO", "replication"], { idempotent: true, signal }),
  ) ?? "";
  const replicas: ReplicaStatus[] = replicasFromInfo(parseInfo(info)).map((r) => ({
    address: r.address,
    state: r.state,
    lagSeconds: r.lagSeconds,
    offsetLag: r.offsetLag,
  }));
  let sentinels: SentinelStatus[] = [];
  if (config.haMode === "sentinel") {
    await using resolver = new SentinelResolver({
      sentinels: client.sentinels,
      masterName: config.sentinelMaster!,
      username: config.sentinelUsername,
      password: config.sentinelPassword,
      tls: config.sentinelTls,
    });
    const decision = await resolver.resolve({ waitAll: true, signal }).catch((error) => {
      signal?.throwIfAborted();
      if (error instanceof Error && error.name === "AbortError") throw error;
      return client.lastDecision;
    });
    sentinels = (decision?.answers ?? []).map(toSentinelStatus)
      .sort((a, b) => a.address.localeCompare(b.address));
  }
  return {
    mode: config.haMode,
    node: primary.address,
    primary: primary.role === "master" ? primary.address : primary.replicaOf ?? null,
    role: primary.role,
    replicaOf: primary.role === "master" ? null : primary.replicaOf ?? null,
    configEpoch: primary.configEpoch ?? null,
    replid: primary.replid,
    replicas,
    sentinels,
    wait: { replicas: config.waitReplicas, timeoutMs: config.waitTimeoutMs },
    namespace: config.namespace,
    warnings: [
      waitBudgetWarning(config.waitReplicas, replicas),
    ].filter((w): w is string => w !== undefined),
  };
}

function toSentinelStatus(answer: SentinelAnswer): SentinelStatus {
  switch (answer.kind) {
    case "master":
      return {
        address: answer.sentinel,
        answered: true,
        reports: formatEndpoint(answer.primary),
        configEpoch: answer.configEpoch,
      };
    case "unknown-master":
      return {
        address: answer.sentinel,
        answered: true,
        error: "does not monitor this master name",
      };
    case "error":
      return { address: answer.sentinel, answered: false, error: answer.error };
  }
}

/** Renders the report as human-readable lines. */
export function formatStatus(report: StatusReport): string {
  const lines = [
    `mode:       ${report.mode}`,
    report.role === "master"
      ? `primary:    ${report.node} (role master` +
        (report.configEpoch === null ? "" : `, config-epoch ${report.configEpoch}`) +
        `, replid ${report.replid})`
      : `replica:    ${report.node} (role ${report.role}, a replica of ` +
        `${report.replicaOf ?? "an unknown primary"}; not a primary)`,
    `namespace:  ${report.namespace}`,
    `wait:       ${
      report.wait.replicas === 0
        ? "off (MN_REDIS_WAIT_REPLICAS=0)"
        : `${report.wait.replicas} replica(s) within ${report.wait.timeoutMs}ms`
    }`,
    `replicas:   ${report.replicas.length === 0 ? "none" : ""}`,
  ];
  for (const r of report.replicas) {
    lines.push(`  ${r.address}  ${r.state}  lag ${r.lagSeconds}s  ${r.offsetLag} bytes behind`);
  }
  if (report.mode === "sentinel") {
    lines.push("sentinels:");
    for (const s of report.sentinels) {
      lines.push(
        s.reports !== undefined
          ? `  ${s.address}  answered  reports ${s.reports} (config-epoch ${s.configEpoch})`
          : `  ${s.address}  ${s.answered ? "answered" : "no answer"}: ${s.error}`,
      );
    }
  }
  return lines.join("\n");
}
