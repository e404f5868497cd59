/**
 * A local primary/replica set with sentinels on free loopback ports, for the
 * smoke test and the integration tests. Everything it starts is stopped, and
 * its directory removed, when it is disposed.
 *
 * @module
 */

import { RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { RedisProcess, type TlsFiles } from "./redis_process.ts";
import { replyToMap, replyToNumber, replyToString } from "../protocol/resp.ts";
import type { Secret } from "../common/secret.ts";
import { waitFor } from "../common/wait_for.ts";
import { parseInfo, replicasFromInfo } from "../protocol/info.ts";

/** Options for {@link LocalCluster.start}. */
export interface LocalClusterOptions {
  /** Parent directory for the cluster's temp dir. */
  baseDir: string;
  /** Number of replicas. @default {2} */
  replicas?: number | undefined;
  /** Number of sentinels. @default {3} */
  sentinels?: number | undefined;
  /** Master name. @default {"mirror-neuron"} */
  masterName?: string | undefined;
  /** Sentinel quorum. @default {majority of sentinels} */
  quorum?: number | undefined;
  /** `down-after-milliseconds`. @default {1000} */
  downAfterMs?: number | undefined;
  /** `failover-timeout`. @default {10000} */
  failoverTimeoutMs?: number | undefined;
  /** Password of the data nodes. */
  password?: Secret | undefined;
  /** Password of the sentinels. */
  sentinelPassword?: Secret | undefined;
  /** Run every node and sentinel TLS-only with these files. */
  tls?: TlsFiles | undefined;
  /** More configuration lines for every data node (e.g. `enable-protected-configs yes`). */
  extraConfig?: readonly string[] | undefined;
  /** Aborts the start; whatever started is stopped. */
  signal?: AbortSignal | undefined;
}

/** A running local cluster. */
export class LocalCluster implements AsyncDisposable {
  /** Master name the sentinels monitor. */
  readonly masterName: string;
  /** The cluster's temp dir (removed on close). */
  readonly dir: string;
  /** All data nodes; `nodes[0]` is the initial primary. */
  readonly nodes: RedisProcess[] = [];
  /** All sentinels. */
  readonly sentinels: RedisProcess[] = [];
  readonly #options: LocalClusterOptions;
  #closed = false;

  private constructor(dir: string, options: LocalClusterOptions) {
    this.dir = dir;
    this.masterName = options.masterName ?? "mirror-neuron";
    this.#options = options;
  }

  /**
   * Starts 1 primary, N replicas and M sentinels, and returns once replicas
   * are in sync and every sentinel knows every replica and every other
   * sentinel (so a failover can be voted on at once).
   */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    await Deno.mkdir(options.baseDir, { recursive: true });
    const dir = await Deno.makeTempDir({ dir: options.baseDir, prefix: "cluster-" });
    const cluster = new LocalCluster(dir, options);
    try {
      await cluster.#boot();
      return cluster;
    } catch (error) {
      await cluster.close();
      throw error;
    }
  }

  async #boot(): Promise<void> {
    const o = this.#options;
    const replicas = o.replicas ?? 2;
    const sentinelCount = o.sentinels ?? 3;
    const primary = await RedisProcess.startServer({
      dir: this.dir,
      password: o.password,
      masterPassword: o.password,
      tls: o.tls,
      extraConfig: o.extraConfig,
      signal: o.signal,
    });
    this.nodes.push(primary);
    await startAll(
      this.nodes,
      Array.from({ length: replicas }, () =>
        RedisProcess.startServer({
          dir: this.dir,
          password: o.password,
          masterPassword: o.password,
          replicaOf: primary.endpoint,
          tls: o.tls,
          extraConfig: o.extraConfig,
          signal: o.signal,
        })),
    );
    await this.waitReplicasInSync(primary.endpoint);
    if (sentinelCount === 0) return;
    await startAll(
      this.sentinels,
      Array.from({ length: sentinelCount }, () =>
        RedisProcess.startSentinel({
          dir: this.dir,
          password: o.sentinelPassword,
          tls: o.tls,
          signal: o.signal,
          monitor: {
            name: this.masterName,
            primary: primary.endpoint,
            quorum: o.quorum ?? Math.floor(sentinelCount / 2) + 1,
            downAfterMs: o.downAfterMs ?? 1000,
            failoverTimeoutMs: o.failoverTimeoutMs ?? 10_000,
            authPassword: o.password,
          },
        })),
    );
    await this.waitSentinelsDiscovered();
  }

  /** Sentinel endpoints. */
  get sentinelEndpoints(): Endpoint[] {
    return this.sentinels.map((s) => s.endpoint);
  }

  /** The data node process listening at `endpoint`. */
  node(endpoint: Endpoint): RedisProcess {
    const found = this.nodes.find((n) => formatEndpoint(n.endpoint) === formatEndpoint(endpoint));
    if (found === undefined) throw new RangeError(`No local node at ${formatEndpoint(endpoint)}`);
    return found;
  }

  /**
   * Brings a node that was killed back on its old port as a replica of
   * `primary` (as an operator restarting a box would; the sentinels then
   * find it) and waits until its replication link is up. Returns the new
   * process, which takes the old one's place in {@link LocalCluster.nodes}.
   */
  async restartAsReplica(
    node: Endpoint,
    primary: Endpoint,
    timeoutMs = 20_000,
  ): Promise<RedisProcess> {
    const old = this.node(node);
    if (!old.exited) throw new RangeError(`${formatEndpoint(node)} is still running`);
    const o = this.#options;
    const restarted = await RedisProcess.startServer({
      dir: this.dir,
      port: node.port,
      password: o.password,
      masterPassword: o.password,
      replicaOf: primary,
      tls: o.tls,
      extraConfig: o.extraConfig,
    });
    this.nodes.splice(this.nodes.indexOf(old), 1, restarted);
    await this.#waitLinkUp(restarted, timeoutMs);
    return restarted;
  }

  /**
   * Starts one more replica of `primary` (a box joining) and waits until its
   * replication link is up. The sentinels find it from the primary's `INFO`.
   */
  async addReplica(primary: Endpoint, timeoutMs = 20_000): Promise<RedisProcess> {
    const o = this.#options;
    const added = await RedisProcess.startServer({
      dir: this.dir,
      password: o.password,
      masterPassword: o.password,
      replicaOf: primary,
      tls: o.tls,
      extraConfig: o.extraConfig,
    });
    this.nodes.push(added);
    await this.#waitLinkUp(added, timeoutMs);
    return added;
  }

  async #waitLinkUp(node: RedisProcess, timeoutMs: number): Promise<void> {
    await waitFor(async () => {
      await using conn = await node.connect();
      const link = parseInfo(replyToString(await conn.send(["INFO", "replication"])) ?? "")
        .get("master_link_status");
      return link === "up"
        ? { done: true, value: undefined }
        : { done: false, observed: `master_link_status ${link}` };
    }, { what: `the node ${formatEndpoint(node.endpoint)} to replicate`, timeoutMs });
  }

  /** Waits until every live replica of `primary` reports its link up and caught up. */
  async waitReplicasInSync(primary: Endpoint, timeoutMs = 15_000): Promise<void> {
    await waitFor(async () => {
      await using conn = await this.node(primary).connect();
      const info = replyToString(await conn.send(["INFO", "replication"], { timeoutMs: 1000 })) ??
        "";
      const fields = parseInfo(info);
      const expected = this.nodes.filter((n) =>
        !n.exited && formatEndpoint(n.endpoint) !== formatEndpoint(primary)
      ).length;
      const online = replicasFromInfo(fields).filter((r) =>
        r.state === "online"
      ).length;
      if (online < expected) {
        return { done: false, observed: `${online} of ${expected} replicas online` };
      }
      // "online" is not yet acknowledging: for up to a second after its sync a replica takes
      // the stream without acking it, and a WAIT 1 right after start times out. Ready (and
      // caught up, also while clients write) means a write that leaves no key is acknowledged.
      await conn.send(["SET", "local-cluster:ready", "1"]);
      await conn.send(["DEL", "local-cluster:ready"]);
      const acked = replyToNumber(await conn.send(["WAIT", expected, 200], { timeoutMs: 1000 }));
      return acked >= expected
        ? { done: true, value: undefined }
        : { done: false, observed: `${acked} of ${expected} replicas acknowledge WAIT` };
    }, { what: `replicas of ${formatEndpoint(primary)} to sync`, timeoutMs });
  }

  /** Waits until every sentinel knows all replicas and all other sentinels. */
  async waitSentinelsDiscovered(timeoutMs = 20_000): Promise<void> {
    const replicas = this.nodes.length - 1;
    const others = this.sentinels.length - 1;
    await waitFor(async () => {
      const seen: string[] = [];
      for (const s of this.sentinels) {
        await using conn = await s.connect();
        const m = replyToMap(
          await conn.send(["SENTINEL", "MASTER", this.masterName], { timeoutMs: 1000 }),
        );
        const slaves = replyToNumber(m.get("num-slaves") ?? 0);
        const peers = replyToNumber(m.get("num-other-sentinels") ?? 0);
        seen.push(`${formatEndpoint(s.endpoint)}: ${slaves} replicas, ${peers} peers`);
        if (slaves < replicas || peers < others) {
          return { done: false, observed: seen.join("; ") };
        }
      }
      return { done: true, value: undefined };
    }, { what: "sentinels to discover replicas and each other", timeoutMs, intervalMs: 100 });
  }

  /**
   * Waits until every live sentinel reports the same primary, that primary
   * is not `excluding`, and its `ROLE` says master. Returns the primary.
   * This is how tests tolerate Sentinel's occasional second failover.
   */
  async waitForAgreement(
    options: {
      excluding?: Endpoint | undefined;
      timeoutMs?: number | undefined;
      signal?: AbortSignal | undefined;
    } = {},
  ): Promise<Endpoint> {
    return await waitFor(async () => {
      const reports = new Set<string>();
      let last: Endpoint | undefined;
      for (const s of this.sentinels.filter((x) => !x.exited)) {
        await using conn = await s.connect();
        const m = replyToMap(
          await conn.send(["SENTINEL", "MASTER", this.masterName], { timeoutMs: 1000 }),
        );
        const flags = replyToString(m.get("flags") ?? null) ?? "";
        last = {
          host: replyToString(m.get("ip") ?? null) ?? "",
          port: Number(replyToString(m.get("port") ?? null)),
        };
        if (/failover_in_progress|s_down|o_down/.test(flags)) {
          return {
            done: false,
            observed: `${formatEndpoint(s.endpoint)} flags ${formatEndpoint(last)} ${flags}`,
          };
        }
        reports.add(formatEndpoint(last));
      }
      if (last === undefined) return { done: false, observed: "no live sentinel" };
      if (reports.size !== 1) {
        return { done: false, observed: `sentinels disagree: ${[...reports].join(" vs ")}` };
      }
      if (
        options.excluding !== undefined &&
        formatEndpoint(options.excluding) === formatEndpoint(last)
      ) {
        return { done: false, observed: `sentinels still report ${formatEndpoint(last)}` };
      }
      await using conn = await RedisConnection.connect(last, {
        password: this.#options.password,
        connectTimeoutMs: 500,
        tls: this.#options.tls !== undefined,
        caCerts: this.#options.tls === undefined ? undefined : [this.#options.tls.caPem],
      });
      const role = await conn.send(["ROLE"], { timeoutMs: 500 });
      const roleName = Array.isArray(role) ? replyToString(role[0]) : null;
      return roleName === "master"
        ? { done: true, value: last }
        : { done: false, observed: `${formatEndpoint(last)} reports role ${roleName}` };
    }, {
      what: "sentinels to agree on one primary",
      timeoutMs: options.timeoutMs ?? 30_000,
      intervalMs: 100,
      signal: options.signal,
    });
  }

  /** Stops every process and removes the temp dir. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.sentinels, ...this.nodes].map((p) => p.stop()));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Same as {@link LocalCluster.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Awaits every start, keeps each process that started (so close() stops it), then rethrows. */
async function startAll(into: RedisProcess[], starts: Promise<RedisProcess>[]): Promise<void> {
  const results = await Promise.allSettled(starts);
  for (const r of results) if (r.status === "fulfilled") into.push(r.value);
  const failed = results.find((r) => r.status === "rejected");
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
}
