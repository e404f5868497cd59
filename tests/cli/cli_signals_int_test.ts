/**
 * SIGINT and SIGTERM end any CLI command within a second, at any phase,
 * with exit code 130 / 143 and nothing left running; frozen sentinels never
 * hang `status` or `probe`.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { startCluster, TEST_TMP, waitFor } from "../_harness/mod.ts";
import { MN_CLI, mnCli, runProcess, spawnCollecting } from "../_harness/process.ts";
import { Boxes } from "../_harness/boxes.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { freePort } from "../../lib/process/redis_process.ts";

const EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/** Starts the CLI, waits until `ready` holds for its stderr, signals it, and times the exit. */
async function interrupt(
  args: readonly string[],
  signal: "SIGINT" | "SIGTERM",
  ready: (stderr: string, stdout: string) => boolean,
  env: Record<string, string> = {},
): Promise<{ code: number; afterSignalMs: number; stderr: string; stdout: string }> {
  const [command, ...prefix] = MN_CLI;
  const child = spawnCollecting(command!, [...prefix, ...args], env);
  try {
    await waitFor(
      () =>
        ready(child.stderr(), child.stdout())
          ? { done: true, value: undefined }
          : { done: false, observed: child.stderr().slice(-300) || "no output yet" },
      { what: `${args.join(" ")} to reach the phase under test`, timeoutMs: 30_000 },
    );
  } catch (error) {
    child.kill("SIGKILL");
    await child.done;
    throw error;
  }
  const sentAt = performance.now();
  child.kill(signal);
  const status = await child.done;
  return {
    code: status.code,
    afterSignalMs: performance.now() - sentAt,
    stderr: child.stderr(),
    stdout: child.stdout(),
  };
}

/** PIDs of processes whose command line mentions `text`. */
async function processesMentioning(text: string): Promise<string> {
  const out = await runProcess("bash", ["-c", `pgrep -af -- '${text}' | grep -v pgrep || true`]);
  return out.stdout.trim();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`mn-redis-ha probe exits ${EXIT[signal]} within 1s on ${signal} while it retries`, async () => {
    const port = freePort();
    const r = await interrupt(
      ["probe", "--url", `redis://127.0.0.1:${port}`, "--reconnect-attempts", "100"],
      signal,
      (stderr) => /reconnecting \(attempt 2/.test(stderr),
      { MN_REDIS_RECONNECT_BACKOFF_MS: "200" },
    );
    assertEquals(r.code, EXIT[signal], r.stderr);
    assert(r.afterSignalMs < 1000, `exited ${Math.round(r.afterSignalMs)}ms after ${signal}`);
    assert(r.stderr.includes(`interrupted by ${signal}`), r.stderr);
  });
}

Deno.test("mn-redis-ha status exits 143 within 1s on SIGTERM while its only sentinel is frozen", async () => {
  await using cluster = await startCluster({ replicas: 0, sentinels: 1, quorum: 1 });
  cluster.sentinels[0]!.kill("SIGSTOP");
  const r = await interrupt(
    [
      "status",
      "--ha-mode",
      "sentinel",
      "--sentinels",
      formatEndpoint(cluster.sentinels[0]!.endpoint),
      "--sentinel-master",
      cluster.masterName,
      "--reconnect-attempts",
      "100",
    ],
    "SIGTERM",
    (stderr) => /answered nothing/.test(stderr),
  );
  assertEquals(r.code, 143, r.stderr);
  assert(r.afterSignalMs < 1000, `exited ${Math.round(r.afterSignalMs)}ms after SIGTERM`);
});

for (const position of ["first", "second"] as const) {
  Deno.test(`mn-redis-ha status and probe finish within 5s with a frozen sentinel listed ${position}`, async () => {
    await using cluster = await startCluster({ replicas: 1, sentinels: 2, quorum: 1 });
    const [good, frozen] = cluster.sentinels;
    frozen!.kill("SIGSTOP");
    const listed = (position === "first" ? [frozen, good] : [good, frozen])
      .map((s) => formatEndpoint(s!.endpoint)).join(",");
    const [command, ...prefix] = MN_CLI;
    for (const sub of ["status", "probe"]) {
      const started = performance.now();
      const r = await runProcess(command!, [
        ...prefix,
        sub,
        "--ha-mode",
        "sentinel",
        "--sentinels",
        listed,
        "--sentinel-master",
        cluster.masterName,
      ], { timeoutMs: 20_000 });
      const ms = performance.now() - started;
      assertEquals(r.code, 0, r.stderr);
      assert(ms < 5000, `${sub} took ${Math.round(ms)}ms`);
      if (sub === "status") assert(/no answer: .*answered nothing/.test(r.stdout), r.stdout);
    }
  });
}

for (const phase of ["starting the servers", "waiting for the failover"] as const) {
  Deno.test(`mn-redis-ha smoke local exits 130 within 1s on SIGINT while ${phase}, leaving nothing running`, async () => {
    await Deno.mkdir(TEST_TMP, { recursive: true });
    const dir = await Deno.makeTempDir({ dir: TEST_TMP, prefix: "sigsmoke-" });
    try {
      const r = await interrupt(
        ["smoke", "local", "--dir", dir],
        "SIGINT",
        (stderr) =>
          phase === "starting the servers"
            ? /step: start 3 redis/.test(stderr)
            : /step: wait for Sentinel promotion/.test(stderr),
      );
      assertEquals(r.code, 130, r.stderr);
      assert(r.afterSignalMs < 1000, `exited ${Math.round(r.afterSignalMs)}ms after SIGINT`);
      await waitFor(async () => {
        const left = await processesMentioning(dir);
        return left === "" ? { done: true, value: undefined } : { done: false, observed: left };
      }, { what: "no process of the smoke to be left", timeoutMs: 2000 });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

Deno.test("mn-redis-ha join exits 130 within 1s on SIGINT after starting its daemons, and stops them", async () => {
  await using boxes = await Boxes.create(1);
  const box = boxes.boxes[0];
  const r = await interrupt(
    boxes.joinArgs(0, ["--bootstrap"]),
    "SIGINT",
    (stderr) => /join: ensuring redis-sentinel/.test(stderr),
  );
  assertEquals(r.code, 130, r.stderr);
  assert(r.afterSignalMs < 1000, `exited ${Math.round(r.afterSignalMs)}ms after SIGINT`);
  // The daemons this run started are gone (they were not running before).
  for (const port of [box!.redisPort, box!.sentinelPort]) {
    await waitFor(async () => {
      const up = await RedisConnection.connect({ host: box!.host, port }, { connectTimeoutMs: 200 })
        .then(async (c) => {
          await c.close();
          return true;
        }, () => false);
      return up
        ? { done: false, observed: `port ${port} still answers` }
        : { done: true, value: undefined };
    }, { what: `the daemon on ${port} to be stopped`, timeoutMs: 2000 });
  }
});

Deno.test("mn-redis-ha leave exits 130 within 1s on SIGINT during the hand-over and leaves no writes paused", async () => {
  await using boxes = await Boxes.create(3);
  for (let i = 0; i < 3; i++) {
    const r = await mnCli(boxes.joinArgs(i, i === 0 ? ["--bootstrap"] : []));
    assertEquals(r.code, 0, r.stderr);
  }
  const r = await interrupt(
    boxes.leaveArgs(0),
    "SIGINT",
    (stderr) => /pausing writes/.test(stderr),
  );
  assertEquals(r.code, 130, r.stderr);
  assert(r.afterSignalMs < 1000, `exited ${Math.round(r.afterSignalMs)}ms after SIGINT`);
  // Whatever role box 1's Redis has now, a write there is answered at once (accepted, or refused
  // as READONLY if Sentinel already moved the primary), never held by a pause.
  await using conn = await boxes.redis(0);
  const started = performance.now();
  await conn.send(["SET", "after-interrupt", "1"], { timeoutMs: 2000 }).catch((error) => {
    assert(/READONLY/.test(String(error)), String(error));
  });
  assert(performance.now() - started < 500, "the write was held by a pause");
});

Deno.test("scripts/test_redis_sentinel_ha.sh passes SIGTERM on: exit 143 within 1s, nothing left running", async () => {
  await Deno.mkdir(TEST_TMP, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: TEST_TMP, prefix: "sigscript-" });
  try {
    const child = spawnCollecting("bash", ["scripts/test_redis_sentinel_ha.sh", "--dir", dir]);
    await waitFor(
      () =>
        /step: start 3 redis/.test(child.stderr())
          ? { done: true, value: undefined }
          : { done: false, observed: child.stderr().slice(-200) || "no output yet" },
      { what: "the smoke to start", timeoutMs: 30_000 },
    );
    const sentAt = performance.now();
    child.kill("SIGTERM");
    const status = await child.done;
    const afterSignalMs = performance.now() - sentAt;
    assertEquals(status.code, 143, child.stderr());
    assert(afterSignalMs < 1000, `exited ${Math.round(afterSignalMs)}ms after SIGTERM`);
    assertEquals(await processesMentioning(dir), "");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("inspect --watch exits 143 on SIGTERM; serve, a service like node start, exits 0 on SIGINT and SIGTERM", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 1 });
  const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
  const env = {
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: sentinels,
    MN_REDIS_SENTINEL_MASTER: cluster.masterName,
  };
  const watched = await interrupt(
    ["inspect", "--watch", "--interval", "0.5"],
    "SIGTERM",
    (_, stdout) => stdout.includes("SENTINEL"),
    env,
  );
  assertEquals(watched.code, 143, watched.stderr);
  assert(watched.afterSignalMs < 1000, `${Math.round(watched.afterSignalMs)}ms`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const served = await interrupt(
      [
        "serve",
        "--listen",
        `127.0.0.1:${freePort()}`,
        "--self-host",
        "127.0.0.1",
        "--redis-port",
        String(cluster.nodes[0]!.endpoint.port),
        "--sentinels",
        sentinels,
        "--master-name",
        cluster.masterName,
      ],
      signal,
      (_, stdout) => stdout.includes("serve_listening"),
    );
    assertEquals(served.code, 0, served.stderr);
    assert(served.stdout.includes("serve_listening"), served.stdout);
    assert(served.afterSignalMs < 1000, `${Math.round(served.afterSignalMs)}ms`);
  }
});
