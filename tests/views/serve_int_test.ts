/**
 * `mn-redis-ha serve` on each box of a real cluster: `/health?role=…` before
 * and after a kill -9 of the primary and while a primary is paused
 * (SIGSTOP), `/metrics` through promtool, `/cluster`, the page, and a real
 * Prometheus server scraping it.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { startCluster, tempDir, waitFor } from "../_harness/mod.ts";
import {
  type CollectingProcess,
  MN_CLI,
  nodeStartArgv,
  spawnCollecting,
} from "../_harness/process.ts";
import { promtoolCheck, sample } from "../_harness/metrics.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { Secret } from "../../lib/common/secret.ts";
import type { LocalCluster } from "../../lib/process/local_cluster.ts";

/** One `serve` per data node of the cluster, each on its own port. */
async function serveEach(
  cluster: LocalCluster,
  options: { narrow?: boolean; env?: Record<string, string> } = {},
): Promise<
  AsyncDisposable & { urls: string[]; processes: CollectingProcess[] }
> {
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
  const processes: CollectingProcess[] = [];
  const urls: string[] = [];
  for (const node of cluster.nodes) {
    const port = freePort();
    urls.push(`http://127.0.0.1:${port}`);
    // `narrow`: as `deno task serve` runs it, under the `serve` permission set.
    const cli = options.narrow === true
      ? ["deno", "run", "-P=serve", "--quiet", "--no-prompt", "main.ts"]
      : [...MN_CLI];
    processes.push(spawnCollecting(cli[0]!, [
      ...cli.slice(1),
      "serve",
      "--listen",
      `127.0.0.1:${port}`,
      "--self-host",
      node.endpoint.host,
      "--redis-port",
      String(node.endpoint.port),
      "--sentinels",
      sentinels,
      "--master-name",
      cluster.masterName,
    ], options.env ?? {}));
  }
  const stop = async (): Promise<void> => {
    for (const p of processes) p.kill("SIGTERM");
    await Promise.all(processes.map((p) => p.done));
  };
  try {
    for (const [i, p] of processes.entries()) {
      await waitFor(
        () =>
          p.stdout().includes("serve_listening")
            ? { done: true, value: undefined }
            : { done: false, observed: p.stderr() },
        { what: `serve ${i} to listen`, timeoutMs: 20_000, intervalMs: 50 },
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls, processes, [Symbol.asyncDispose]: stop };
}

async function status(url: string, method = "GET"): Promise<number> {
  const response = await fetch(url, { method });
  await response.body?.cancel();
  return response.status;
}

/** Waits until `/health?role=primary` answers 200 on exactly box `want` (and 503 on the others). */
async function primaryIs(urls: string[], want: number, alive: number[]): Promise<void> {
  await waitFor(async () => {
    const codes = await Promise.all(
      alive.map((i) => status(`${urls[i]}/health?role=primary`)),
    );
    const ok = alive.filter((_, k) => codes[k] === 200);
    return ok.length === 1 && ok[0] === want
      ? { done: true, value: undefined }
      : { done: false, observed: `200 on boxes ${ok.join(",") || "none"}` };
  }, {
    what: `/health?role=primary to answer 200 on box ${want} only`,
    timeoutMs: 30_000,
    intervalMs: 200,
  });
}

Deno.test("serve: /health?role= follows a kill -9 and a SIGSTOP of the primary; /metrics passes promtool; /cluster and / answer", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  await using served = await serveEach(cluster);
  const { urls } = served;

  // Before: box 0 is the primary, boxes 1 and 2 are replicas with their links up.
  await primaryIs(urls, 0, [0, 1, 2]);
  for (const i of [1, 2]) {
    await waitFor(async () => {
      const code = await status(`${urls[i]}/health?role=replica&max_lag_bytes=1048576`);
      return code === 200
        ? { done: true, value: undefined }
        : { done: false, observed: `HTTP ${code}` };
    }, { what: `box ${i} healthy as replica`, timeoutMs: 15_000, intervalMs: 100 });
  }
  assertEquals(await status(`${urls[0]}/health?role=replica`), 503);
  assertEquals(await status(`${urls[0]}/health`, "HEAD"), 200);
  assertEquals(await status(`${urls[0]}/health?role=leader`), 400);
  assertEquals(await status(`${urls[0]}/metrics`, "POST"), 405);

  const metrics = await (await fetch(`${urls[1]}/metrics`)).text();
  const checked = await promtoolCheck(metrics);
  assertEquals(checked.code, 0, checked.output + metrics);
  assertEquals(sample(metrics, 'mn_redis_ha_sentinels{state="ok"}'), 3, metrics);
  assertEquals(sample(metrics, "mn_redis_ha_redis_is_primary"), 0);
  assertEquals(sample(metrics, "mn_redis_ha_replica_link_up"), 1);
  const open = await fetch(`${urls[1]}/metrics`, {
    headers: { accept: "application/openmetrics-text; version=1.0.0" },
  });
  assert(open.headers.get("content-type")!.startsWith("application/openmetrics-text"));
  assert((await open.text()).endsWith("# EOF\n"));

  // SIGSTOP the primary: once the sentinels moved on, the paused box never answers 200 as primary.
  const paused = cluster.nodes[0]!;
  paused.kill("SIGSTOP");
  try {
    const next = await cluster.waitForAgreement({ excluding: paused.endpoint, timeoutMs: 30_000 });
    const nextIndex = cluster.nodes.findIndex((n) =>
      formatEndpoint(n.endpoint) === formatEndpoint(next)
    );
    await primaryIs(urls, nextIndex, [0, 1, 2]);
    const pausedAnswers = await status(`${urls[0]}/health?role=primary`);
    assertEquals(pausedAnswers, 503, "a paused old primary must not look healthy");
  } finally {
    paused.kill("SIGCONT");
  }

  // kill -9 the current primary: another box takes over; the dead box answers 503 both ways.
  const now = await cluster.waitForAgreement({ timeoutMs: 30_000 });
  const killed = cluster.nodes.findIndex((n) => formatEndpoint(n.endpoint) === formatEndpoint(now));
  cluster.nodes[killed]!.kill("SIGKILL");
  const after = await cluster.waitForAgreement({
    excluding: cluster.nodes[killed]!.endpoint,
    timeoutMs: 30_000,
  });
  const afterIndex = cluster.nodes.findIndex((n) =>
    formatEndpoint(n.endpoint) === formatEndpoint(after)
  );
  const alive = [0, 1, 2].filter((i) => i !== killed);
  await primaryIs(urls, afterIndex, alive);
  assertEquals(await status(`${urls[killed]}/health?role=primary`), 503);
  assertEquals(await status(`${urls[killed]}/health?role=replica`), 503);

  // /cluster: the topology and the Sentinel events, failovers counted once each.
  const view = await (await fetch(`${urls[afterIndex]}/cluster`)).json();
  assertEquals(view.box.primary, formatEndpoint(after));
  assert(view.events.some((e: { channel: string }) => e.channel === "+switch-master"));
  assert(
    view.lastFailover.some((line: string) => line.includes("promoted (+switch-master)")),
    view.lastFailover.join("\n"),
  );
  // Two failovers were caused; Sentinel now and then adds a spurious second one of its own.
  const channels = JSON.stringify(view.events.map((e: { channel: string }) => e.channel));
  assert(view.failovers >= 2 && view.failovers <= 4, `${view.failovers} failovers: ${channels}`);
  const final = await (await fetch(`${urls[afterIndex]}/metrics`)).text();
  assertEquals(
    sample(final, 'mn_redis_ha_failovers_total{source="sentinel_event"}'),
    view.failovers,
    final,
  );
  assertEquals(sample(final, "mn_redis_ha_redis_is_primary"), 1, final);
  const page = await (await fetch(`${urls[afterIndex]}/`)).text();
  assert(page.startsWith("<!doctype html>") && page.includes("/cluster"));
  assert(!/(src|href)="(https?:)?\/\//.test(page), "the page loads nothing from elsewhere");
});

Deno.test("a real Prometheus server scrapes serve (under the narrow serve permissions) and a node, and its API returns the series", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 1 });
  await using served = await serveEach(cluster, { narrow: true });
  const nodePort = freePort();
  const [nodeCommand, ...nodeArgs] = nodeStartArgv({
    box: 1,
    sentinels: cluster.sentinelEndpoints.map(formatEndpoint).join(","),
    master: cluster.masterName,
    extra: [
      "--redis-port",
      String(cluster.nodes[0]!.endpoint.port),
      "--skip-redis-ha",
      "--metrics-listen",
      `127.0.0.1:${nodePort}`,
    ],
  });
  const node = spawnCollecting(nodeCommand!, nodeArgs, {
    MN_REDIS_NAMESPACE: `prom_${crypto.randomUUID().slice(0, 6)}`,
  });
  await using dir = await tempDir("prometheus-");
  const port = freePort();
  const targets = [...served.urls, `http://127.0.0.1:${nodePort}`]
    .map((u) => `'${u.slice("http://".length)}'`).join(", ");
  await Deno.writeTextFile(
    `${dir.path}/prometheus.yml`,
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: mn-redis-ha\n    static_configs:\n      - targets: [${targets}]\n`,
  );
  const prometheus = spawnCollecting("prometheus", [
    `--config.file=${dir.path}/prometheus.yml`,
    `--storage.tsdb.path=${dir.path}/data`,
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  try {
    const series = await waitFor(async () => {
      try {
        const r = await fetch(
          `http://127.0.0.1:${port}/api/v1/query?query=${
            encodeURIComponent("mn_redis_ha_redis_up")
          }`,
        );
        const body = await r.json();
        const results = body.data?.result ?? [];
        return results.length === served.urls.length + 1
          ? { done: true, value: results as { value: [number, string] }[] }
          : { done: false, observed: JSON.stringify(body).slice(0, 300) };
      } catch (error) {
        return { done: false, observed: String(error) };
      }
    }, { what: "Prometheus to scrape every serve", timeoutMs: 30_000, intervalMs: 250 });
    assert(series.every((s) => s.value[1] === "1"));
    const up = await (await fetch(
      `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('up{job="mn-redis-ha"}')}`,
    )).json();
    assert(up.data.result.every((s: { value: [number, string] }) => s.value[1] === "1"));
    const writes = await (await fetch(
      `http://127.0.0.1:${port}/api/v1/query?query=${
        encodeURIComponent('mn_redis_ha_writes_total{outcome="confirmed"}')
      }`,
    )).json();
    assertEquals(writes.data.result.length, 1, JSON.stringify(writes));
  } finally {
    prometheus.kill("SIGTERM");
    await prometheus.done;
    node.kill("SIGTERM");
    await node.done;
  }
});

Deno.test("node start --metrics-listen serves the box's series and the node client's own; its failover counter and unavailability follow a kill -9", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
  const primary = cluster.nodes[0]!;
  const port = freePort();
  const [nodeCommand, ...nodeArgs] = nodeStartArgv({
    box: 1,
    sentinels,
    master: cluster.masterName,
    extra: [
      "--redis-port",
      String(primary.endpoint.port),
      "--redis-wait-replicas",
      "1",
      "--skip-redis-ha",
      "--metrics-listen",
      `127.0.0.1:${port}`,
    ],
  });
  const node = spawnCollecting(nodeCommand!, nodeArgs, {
    MN_REDIS_NAMESPACE: `metrics_${crypto.randomUUID().slice(0, 6)}`,
  });
  try {
    await waitFor(
      () =>
        node.stdout().includes("node_started")
          ? { done: true, value: undefined }
          : { done: false, observed: node.stderr() },
      { what: "the node to start", timeoutMs: 30_000, intervalMs: 50 },
    );
    const scrape = async (): Promise<string> =>
      await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const first = await scrape();
    const checked = await promtoolCheck(first);
    assertEquals(checked.code, 0, checked.output + first);
    assert(sample(first, 'mn_redis_ha_writes_total{outcome="confirmed"}') >= 1, first);
    assertEquals(sample(first, "mn_redis_ha_redis_is_primary"), 1, first);
    assert(first.includes("\ndb_client_operation_duration_seconds_bucket{"), first);
    assertEquals(first.match(/^# TYPE mn_redis_ha_build_info /gm)?.length, 1, "one build_info");
    assertEquals(
      await (await fetch(`http://127.0.0.1:${port}/health?role=primary`)).text(),
      `primary ${formatEndpoint(primary.endpoint)}\n`,
    );

    primary.kill("SIGKILL");
    await cluster.waitForAgreement({ excluding: primary.endpoint, timeoutMs: 30_000 });
    await waitFor(async () => {
      const text = await scrape();
      const total = ["sentinel_event", "role_mismatch", "probe", "connection"].reduce(
        (n, source) => n + sample(text, `mn_redis_ha_failovers_total{source="${source}"}`),
        0,
      );
      // …and the window in which its own writes (heartbeats, renewals) could not be made.
      const windows = sample(text, "mn_redis_ha_failover_unavailability_seconds_count");
      return total >= 1 && windows >= 1
        ? { done: true, value: undefined }
        : { done: false, observed: `${total} failovers, ${windows} unavailability windows` };
    }, { what: "the node client to count the failover", timeoutMs: 30_000, intervalMs: 200 });
  } finally {
    node.kill("SIGTERM");
    await node.done;
  }
});

Deno.test("serve never writes to Redis and never shows a secret", async () => {
  const password = "serve-secret-pw";
  await using cluster = await startCluster({
    replicas: 1,
    sentinels: 1,
    password: new Secret(password),
  });
  const primary = cluster.nodes[0]!;
  // Redis counts every change to the dataset since the last save: serve must not add one.
  const writeCalls = async (): Promise<number> => {
    await using conn = await primary.connect();
    const info = replyToString(await conn.send(["INFO", "persistence"])) ?? "";
    return Number(/rdb_changes_since_last_save:(\d+)/.exec(info)?.[1] ?? NaN);
  };
  const before = await writeCalls();
  await using served = await serveEach(cluster, {
    narrow: true,
    env: { MN_REDIS_PASSWORD: password },
  });
  const url = served.urls[0]!;
  for (
    const path of ["/metrics", "/cluster", "/", "/health?role=primary", "/health?role=replica"]
  ) {
    const body = await (await fetch(`${url}${path}`)).text();
    assert(!body.includes(password), `${path} shows the password`);
  }
  assertEquals(await status(`${url}/health?role=primary`), 200);
  assertEquals(await writeCalls(), before, "serve made writes");
  for (const p of served.processes) assert(!p.stderr().includes(password));
});
