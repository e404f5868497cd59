/**
 * `mn-redis-ha serve` (and `node start --metrics-listen`): a read-only HTTP
 * server for one box. `/metrics` (Prometheus text or OpenMetrics),
 * `/health[?role=primary|replica]` for load balancers, `/cluster` (JSON
 * topology and recent events) and `/` (a self-contained page). Every answer
 * is measured when asked, with short deadlines; nothing is ever written to
 * Redis and no secret appears in any answer.
 *
 * @module
 */

import type { Config } from "../ha/config.ts";
import { MetricRegistry, metricsContentType, type MetricsFormat } from "../ha/metric_registry.ts";
import { SentinelWatcher } from "../ha/sentinel_watcher.ts";
import { lastFailover } from "./watch.ts";
import { parseSwitchMaster } from "../ha/resolver_decision.ts";
import { RedisConnection } from "../protocol/connection.ts";
import {
  type Endpoint,
  formatEndpoint,
  formatHostPort,
  parseEndpoint,
} from "../protocol/endpoint.ts";
import { parseInfo } from "../protocol/info.ts";
import { replyToMap, replyToString } from "../protocol/resp.ts";
import { VERSION } from "../common/version.ts";
import { DASHBOARD_HTML } from "./serve_page.ts";

/** The box a server reports on, and how to reach the cluster. */
export interface ServeOptions {
  /** Where to listen. */
  listen: Endpoint;
  /** This box's Redis. */
  redis: Endpoint;
  /** Every sentinel of the cluster. */
  sentinels: readonly Endpoint[];
  /** The master name. */
  masterName: string;
  /** Credentials and TLS (`MN_REDIS_*`). */
  config: Config;
  /** Stops the server. */
  signal: AbortSignal;
  /** Called once listening, with the bound address. */
  onListen: (address: string) => void;
  /** The node's own client series (`node start --metrics-listen`). */
  clientMetrics?: ((format: MetricsFormat) => string) | undefined;
  /** The full topology for `/cluster` (read-only). */
  topology: () => Promise<unknown>;
}

/** What one sentinel says. */
export interface SentinelState {
  readonly address: string;
  readonly state: "ok" | "sdown" | "tilt" | "unreachable";
  readonly reports: string | null;
  readonly configEpoch: number | null;
}

/** This box and the cluster as seen at one moment. */
export interface BoxSnapshot {
  readonly at: string;
  readonly sentinels: readonly SentinelState[];
  /** The primary a majority of the listed sentinels names, if any. */
  readonly primary: string | null;
  readonly configEpoch: number | null;
  readonly self: {
    readonly address: string;
    readonly reachable: boolean;
    readonly role: string | null;
    readonly linkUp: boolean | null;
    readonly lagBytes: number | null;
  };
}

/** One event of the ring buffer. */
export interface ClusterEvent {
  readonly at: string;
  /** `performance.now()` when seen, for timing phases. */
  readonly atMs: number;
  readonly sentinel: string;
  readonly channel: string;
  readonly payload: string;
}

const DEADLINE_MS = 1000;
const MAX_EVENTS = 200;
const SAME_FAILOVER_MS = 30_000;

async function ask<T>(
  endpoint: Endpoint,
  options: Parameters<typeof RedisConnection.connect>[1],
  run: (conn: RedisConnection) => Promise<T>,
): Promise<T> {
  await using conn = await RedisConnection.connect(endpoint, {
    ...options,
    connectTimeoutMs: DEADLINE_MS,
  });
  return await run(conn);
}

/** Measures the box: every sentinel, the majority's primary, this box's Redis and its lag. */
export async function snapshot(options: ServeOptions): Promise<BoxSnapshot> {
  const c = options.config;
  const sentinelAuth = {
    username: c.sentinelUsername,
    password: c.sentinelPassword,
    tls: c.sentinelTls,
  };
  const redisAuth = { username: c.username, password: c.password, tls: c.tls };
  const sentinels = await Promise.all(options.sentinels.map(async (s): Promise<SentinelState> => {
    const address = formatEndpoint(s);
    try {
      return await ask(s, sentinelAuth, async (conn) => {
        const m = replyToMap(
          await conn.send(["SENTINEL", "MASTER", options.masterName], { timeoutMs: DEADLINE_MS }),
        );
        const info = parseInfo(
          replyToString(await conn.send(["INFO", "sentinel"], { timeoutMs: DEADLINE_MS })) ?? "",
        );
        const flags = replyToString(m.get("flags") ?? null) ?? "";
        return {
          address,
          state: info.get("sentinel_tilt") === "1"
            ? "tilt"
            : /s_down|o_down/.test(flags)
            ? "sdown"
            : "ok",
          reports: formatHostPort(
            replyToString(m.get("ip") ?? null),
            replyToString(m.get("port") ?? null),
          ),
          configEpoch: Number(replyToString(m.get("config-epoch") ?? null) ?? NaN),
        };
      });
    } catch {
      return { address, state: "unreachable", reports: null, configEpoch: null };
    }
  }));
  const votes = new Map<string, number>();
  for (const s of sentinels) {
    if (s.reports !== null && s.state !== "tilt") {
      votes.set(s.reports, (votes.get(s.reports) ?? 0) + 1);
    }
  }
  const majority = Math.floor(options.sentinels.length / 2) + 1;
  const primary = [...votes].find(([, n]) => n >= majority)?.[0] ?? null;
  const configEpoch = primary === null
    ? null
    : Math.max(...sentinels.filter((s) => s.reports === primary).map((s) => s.configEpoch ?? 0));
  const address = formatEndpoint(options.redis);
  let self: BoxSnapshot["self"] = {
    address,
    reachable: false,
    role: null,
    linkUp: null,
    lagBytes: null,
  };
  try {
    self = await ask(options.redis, redisAuth, async (conn) => {
      const role = await conn.send(["ROLE"], { timeoutMs: DEADLINE_MS });
      const info = parseInfo(
        replyToString(await conn.send(["INFO", "replication"], { timeoutMs: DEADLINE_MS })) ?? "",
      );
      const name = Array.isArray(role) ? replyToString(role[0]) : null;
      let lagBytes: number | null = null;
      const primaryEndpoint = primary === null ? "no primary" : parseEndpoint(primary);
      if (name === "slave" && typeof primaryEndpoint !== "string") {
        const primaryOffset = await ask(
          primaryEndpoint,
          redisAuth,
          async (p) =>
            Number(
              parseInfo(
                replyToString(await p.send(["INFO", "replication"], { timeoutMs: DEADLINE_MS })) ??
                  "",
              ).get("master_repl_offset") ?? NaN,
            ),
        ).catch(() => NaN);
        const own = Number(info.get("slave_repl_offset") ?? NaN);
        if (Number.isFinite(primaryOffset) && Number.isFinite(own)) {
          lagBytes = Math.max(0, primaryOffset - own);
        }
      }
      return {
        address,
        reachable: true,
        role: name,
        linkUp: name === "slave" ? info.get("master_link_status") === "up" : null,
        lagBytes,
      };
    });
  } catch {
    // Unreachable (down, paused, firewalled): reported as such.
  }
  return { at: new Date().toISOString(), sentinels, primary, configEpoch, self };
}

/** The box's series. */
export function boxMetrics(
  snap: BoxSnapshot,
  counters: { failovers: number; lastFailoverSeconds: number | undefined } | undefined,
): MetricRegistry {
  const r = new MetricRegistry();
  if (counters !== undefined) {
    r.info("build", "The mn-redis-ha version.", { version: VERSION });
    r.counter("failovers", "Primary changes, by what noticed them.");
    r.inc("failovers", { source: "sentinel_event" }, counters.failovers);
    if (counters.lastFailoverSeconds !== undefined) {
      r.set(
        "last_failover_timestamp_seconds",
        "When the last failover was announced (Unix time).",
        counters.lastFailoverSeconds,
        {},
        "seconds",
      );
    }
  }
  for (const state of ["ok", "sdown", "tilt", "unreachable"] as const) {
    r.set(
      "sentinels",
      "Listed sentinels by state: ok, sdown (sees the master down), tilt, unreachable.",
      snap.sentinels.filter((s) => s.state === state).length,
      { state },
    );
  }
  r.set(
    "sentinels_agreeing",
    "Listed sentinels that name the majority's primary.",
    snap.sentinels.filter((s) => s.reports !== null && s.reports === snap.primary).length,
  );
  if (snap.primary !== null) {
    r.info("cluster_primary", "The primary a majority of the sentinels names.", {
      address: snap.primary,
    });
    r.set("cluster_config_epoch", "Sentinel config-epoch of that primary.", snap.configEpoch ?? 0);
  }
  r.set(
    "cluster_primary_known",
    "1 when a majority of the sentinels names one primary.",
    snap.primary === null ? 0 : 1,
  );
  r.set("redis_up", "1 when this box's Redis answers.", snap.self.reachable ? 1 : 0);
  r.set(
    "redis_is_primary",
    "1 when this box's Redis is the majority's primary and ROLE says master.",
    isPrimary(snap) ? 1 : 0,
  );
  if (snap.self.linkUp !== null) {
    r.set(
      "replica_link_up",
      "1 when this box's replica link to the primary is up.",
      snap.self.linkUp ? 1 : 0,
    );
  }
  if (snap.self.lagBytes !== null) {
    r.set(
      "replication_lag_bytes",
      "How far this box's replica is behind the primary's replication offset.",
      snap.self.lagBytes,
      {},
      "bytes",
    );
  }
  return r;
}

function isPrimary(snap: BoxSnapshot): boolean {
  return snap.self.role === "master" && snap.primary === snap.self.address;
}

/** The `/health` answer: status and a one-line reason. */
export function health(
  snap: BoxSnapshot,
  params: URLSearchParams,
): { status: number; text: string } {
  const role = params.get("role");
  if (role === null) return { status: 200, text: "ok" };
  if (role === "primary") {
    if (isPrimary(snap)) return { status: 200, text: `primary ${snap.self.address}` };
    return {
      status: 503,
      text: !snap.self.reachable
        ? `${snap.self.address} does not answer`
        : snap.primary === null
        ? "no majority of sentinels names a primary"
        : `the sentinels' primary is ${snap.primary}; ${snap.self.address} says ${snap.self.role}`,
    };
  }
  if (role === "replica") {
    const maxLag = params.get("max_lag_bytes");
    if (maxLag !== null && !/^\d+$/.test(maxLag)) {
      return { status: 400, text: `max_lag_bytes is ${JSON.stringify(maxLag)}; expected bytes` };
    }
    if (snap.self.role !== "slave" || snap.self.linkUp !== true) {
      return { status: 503, text: `${snap.self.address} is not a replica with its link up` };
    }
    if (maxLag !== null && (snap.self.lagBytes === null || snap.self.lagBytes > Number(maxLag))) {
      return { status: 503, text: `lag ${snap.self.lagBytes ?? "unknown"} bytes > ${maxLag}` };
    }
    return { status: 200, text: `replica ${snap.self.address}, lag ${snap.self.lagBytes} bytes` };
  }
  return { status: 400, text: `role is ${JSON.stringify(role)}; expected primary or replica` };
}

/** Prefers OpenMetrics when the scraper asks for it. */
function negotiate(accept: string | null): MetricsFormat {
  return accept !== null && accept.includes("application/openmetrics-text")
    ? "openmetrics"
    : "prometheus";
}

/** Runs the server until `signal` aborts. */
export async function serve(options: ServeOptions): Promise<void> {
  const events: ClusterEvent[] = [];
  let failovers = 0;
  let lastFailoverSeconds: number | undefined;
  // Every sentinel announces the same switch, some a second or two late: a target announced
  // within the last 30 s is the same failover.
  const lastSwitchTo = new Map<string, number>();
  const c = options.config;
  const record = (event: ClusterEvent): void => {
    events.push(event);
    if (events.length > MAX_EVENTS) events.shift();
  };
  // This box's role as last seen: a change is an event of its own.
  let lastRole: string | null | undefined;
  const noteRole = (box: BoxSnapshot): void => {
    if (lastRole !== undefined && box.self.role !== lastRole) {
      record({
        at: box.at,
        atMs: performance.now(),
        sentinel: "this box",
        channel: "role",
        payload: `${box.self.address}: ${lastRole ?? "down"} -> ${box.self.role ?? "down"}`,
      });
    }
    lastRole = box.self.role;
  };
  await using _watcher = new SentinelWatcher({
    sentinels: () => options.sentinels,
    masterName: options.masterName,
    username: c.sentinelUsername,
    password: c.sentinelPassword,
    tls: c.sentinelTls,
    onEvent: (event) => {
      record({ at: new Date().toISOString(), atMs: performance.now(), ...event });
      if (event.channel === "+switch-master") {
        const to = parseSwitchMaster(event.payload)?.to;
        const key = to === undefined ? event.payload : formatEndpoint(to);
        const now = performance.now();
        const last = lastSwitchTo.get(key);
        if (last === undefined || now - last > SAME_FAILOVER_MS) {
          failovers++;
          lastFailoverSeconds = Date.now() / 1000;
        }
        lastSwitchTo.set(key, now);
      }
    },
  });
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const head = request.method === "HEAD";
    if (request.method !== "GET" && !head) {
      return new Response("read-only: GET or HEAD\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    const text = (status: number, body: string, type = "text/plain; charset=utf-8"): Response =>
      new Response(head ? null : body, {
        status,
        headers: { "content-type": type, "cache-control": "no-store" },
      });
    switch (url.pathname) {
      case "/health": {
        if (url.searchParams.get("role") === null) return text(200, "ok\n");
        const snap = await snapshot(options);
        noteRole(snap);
        const h = health(snap, url.searchParams);
        return text(h.status, h.text + "\n");
      }
      case "/metrics": {
        const format = negotiate(request.headers.get("accept"));
        const snap = await snapshot(options);
        noteRole(snap);
        const box = boxMetrics(
          snap,
          options.clientMetrics === undefined ? { failovers, lastFailoverSeconds } : undefined,
        ).render(format);
        const body = options.clientMetrics === undefined
          ? box
          : box.replace(/# EOF\n$/, "") + options.clientMetrics(format);
        return text(200, body, metricsContentType(format));
      }
      case "/cluster": {
        const [box, topology] = await Promise.all([
          snapshot(options),
          options.topology().catch((error) => ({ error: (error as Error).message })),
        ]);
        noteRole(box);
        const phases = lastFailover(events.map((e) => ({
          atMs: e.atMs,
          lane: e.channel === "role" ? "roles" : "sentinel",
          what: e.channel === "role" ? "primary" : e.channel,
          detail: e.payload,
        })));
        const shown = events.map(({ atMs: _atMs, ...e }) => e);
        return text(
          200,
          JSON.stringify(
            { box, topology, events: shown, failovers, lastFailover: phases },
            null,
            2,
          ),
          "application/json",
        );
      }
      case "/":
        return text(200, DASHBOARD_HTML, "text/html; charset=utf-8");
      default:
        return text(404, "not found: /, /metrics, /health, /cluster\n");
    }
  };
  const server = Deno.serve({
    hostname: options.listen.host,
    port: options.listen.port,
    signal: options.signal,
    onListen: ({ hostname, port }) => options.onListen(formatHostPort(hostname, port)),
  }, handler);
  await server.finished;
}
