/**
 * The client under a paused primary (SIGSTOP past down-after) and a primary
 * demoted in place behind Sentinel's back, with a WAIT 1 write load: how long
 * writers could not write, what happened to writes in flight, and what the
 * old primary executed after the client learned of the switch.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import {
  assertAllPresent,
  sentinelConfig,
  startCluster,
  tempDir,
  waitFor,
} from "../_harness/mod.ts";
import { PersistenceError } from "../../lib/common/reply_errors.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { delay } from "../../lib/common/delay.ts";
import { AbortedError, OutcomeUnknownError, WaitError } from "../../lib/common/errors.ts";
import { configureCliLogging, resetLogging } from "../../lib/common/log.ts";
import type { RedisProcess } from "../../lib/process/redis_process.ts";

/** Every command a node executes, read from a raw `MONITOR` connection. */
async function monitor(node: RedisProcess): Promise<AsyncDisposable & { lines(): string[] }> {
  const conn = await Deno.connect({ hostname: node.endpoint.host, port: node.endpoint.port });
  await conn.write(new TextEncoder().encode("MONITOR\r\n"));
  let text = "";
  const reading = (async () => {
    try {
      for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) text += chunk;
    } catch {
      // Closed.
    }
  })();
  return {
    lines: () => text.split("\r\n"),
    [Symbol.asyncDispose]: async () => {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      await reading;
    },
  };
}

interface Write {
  key: string;
  invokedAt: number;
  okAt?: number | undefined;
  error?: unknown | undefined;
}

/** A running write load. */
interface Load {
  writes: Write[];
  acked(): Write[];
  stop(): Promise<void>;
}

/** Writers doing durable idempotent SETs of unique keys, recording every outcome. */
function writers(client: RedisHaClient, prefix: string, concurrency: number): Load {
  const writes: Write[] = [];
  let running = true;
  let next = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const w: Write = { key: `${prefix}:${next++}`, invokedAt: performance.now() };
      writes.push(w);
      try {
        await client.durable(["SET", w.key, w.key], { idempotent: true });
        w.okAt = performance.now();
      } catch (error) {
        w.error = error;
        // Rate limit, not synchronisation: fast failures must not pile up millions of records.
        await delay(10);
      }
    }
  });
  return {
    writes,
    acked: () => writes.filter((w) => w.okAt !== undefined),
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

function waitAcked(load: Load, count: number, what: string): Promise<void> {
  const target = load.acked().length + count;
  return waitFor(
    () =>
      load.acked().length >= target
        ? { done: true, value: undefined }
        : { done: false, observed: `${load.acked().length} of ${target}` },
    { what, timeoutMs: 30_000 },
  );
}

Deno.test("RedisHaClient under a SIGSTOPped primary: writes resume within 1s of +switch-master, nothing new reaches the old primary, ≤ 10 warning lines", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 500 });
  const warnings: string[] = [];
  await configureCliLogging({
    format: "text",
    write: (line) => {
      if (/WARN/i.test(line)) warnings.push(line);
    },
  });
  try {
    await using client = await RedisHaClient.connect(config);
    let switchSeenAt: number | undefined;
    client.events.on("sentinel-event", ({ channel }) => {
      if (channel === "+switch-master") switchSeenAt ??= performance.now();
    });
    const load = writers(client, `${config.namespace}:w`, 50);
    const old = cluster.nodes[0];
    await using seen = await monitor(old!);
    try {
      await waitAcked(load, 500, "writes before the pause");
      warnings.length = 0;
      const pausedAt = performance.now();
      old!.kill("SIGSTOP");
      const next = await cluster.waitForAgreement({ excluding: old!.endpoint, timeoutMs: 30_000 });
      await waitFor(
        () =>
          switchSeenAt !== undefined
            ? { done: true, value: undefined }
            : { done: false, observed: "no +switch-master yet" },
        { what: "the client to hear +switch-master", timeoutMs: 10_000 },
      );
      await waitAcked(load, 200, "writes on the new primary");
      old!.kill("SIGCONT");
      await waitAcked(load, 200, "writes after the old primary resumed");
      await load.stop();
      // A fold, not Math.min(...): a long pause acks more writes than the call stack takes.
      const firstAfter = load.acked().reduce(
        (first, w) => w.okAt! > switchSeenAt! ? Math.min(first, w.okAt!) : first,
        Infinity,
      );
      const resumedMs = firstAfter - switchSeenAt!;
      // deno-lint-ignore no-console -- the measured figures, quoted in the README
      console.log(
        `paused→switch seen ${Math.round(switchSeenAt! - pausedAt)}ms, switch→first ack ${
          Math.round(resumedMs)
        }ms, warnings ${warnings.length}`,
      );
      assert(resumedMs < 1000, `writes resumed ${Math.round(resumedMs)}ms after the switch`);
      // Only honest outcomes: nothing reported failed outright.
      const definite = load.writes.filter((w) =>
        w.error !== undefined && !(w.error instanceof WaitError) &&
        !(w.error instanceof OutcomeUnknownError) && !(w.error instanceof AbortedError)
      );
      assertEquals(definite.map((w) => String(w.error)), []);
      // Every acknowledged write is on the primary the sentinels name.
      const primary = cluster.node(next);
      await assertAllPresent(primary, load.acked().map((w) => w.key));
      // The old primary executed nothing invoked after the client learned of the switch.
      const late = new Set(
        load.writes.filter((w) => w.invokedAt > switchSeenAt!).map((w) => w.key),
      );
      const fromMaster = formatEndpoint(next);
      const executedLate = seen.lines().filter((line) =>
        !line.includes(fromMaster) && /"SET" "([^"]+)"/.test(line) &&
        late.has(/"SET" "([^"]+)"/.exec(line)![1]!)
      );
      assertEquals(executedLate, []);
      assert(warnings.length <= 10, `${warnings.length} warning lines:\n${warnings.join("\n")}`);
    } finally {
      old!.kill("SIGCONT");
      await load.stop();
    }
  } finally {
    await resetLogging();
  }
});

Deno.test("RedisHaClient with a primary demoted in place (REPLICAOF behind Sentinel's back): no applied write reported failed, writes resume on Sentinel's primary", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 500 });
  await using client = await RedisHaClient.connect(config);
  let switchSeenAt: number | undefined;
  client.events.on("sentinel-event", ({ channel }) => {
    if (channel === "+switch-master") switchSeenAt ??= performance.now();
  });
  // Non-idempotent appends: each value is unique, so the final list shows what was applied.
  const list = `${config.namespace}:list`;
  const outcomes: {
    value: string;
    ok: boolean;
    error?: unknown | undefined;
    okAt?: number | undefined;
  }[] = [];
  let running = true;
  let next = 0;
  const loops = Array.from({ length: 8 }, async () => {
    while (running) {
      const value = `v${next++}`;
      try {
        await client.durable(["RPUSH", list, value]);
        outcomes.push({ value, ok: true, okAt: performance.now() });
      } catch (error) {
        outcomes.push({ value, ok: false, error });
      }
    }
  });
  const [old, other] = cluster.nodes;
  try {
    await waitFor(
      () =>
        outcomes.length > 300
          ? { done: true, value: undefined }
          : { done: false, observed: `${outcomes.length}` },
      { what: "writes before the demotion", timeoutMs: 20_000 },
    );
    await using conn = await old!.connect();
    await conn.send(["REPLICAOF", other!.endpoint.host, other!.endpoint.port]);
    const next = await cluster.waitForAgreement({ excluding: old!.endpoint, timeoutMs: 60_000 });
    await waitFor(
      () =>
        switchSeenAt !== undefined &&
          outcomes.some((o) => o.ok && o.okAt! > switchSeenAt!)
          ? { done: true, value: undefined }
          : { done: false, observed: `switch seen: ${switchSeenAt !== undefined}` },
      { what: "writes to resume after the switch", timeoutMs: 20_000 },
    );
    running = false;
    await Promise.all(loops);
    const resumedMs = outcomes.reduce(
      (first, o) => o.ok && o.okAt! > switchSeenAt! ? Math.min(first, o.okAt!) : first,
      Infinity,
    ) - switchSeenAt!;
    // deno-lint-ignore no-console -- the measured figures, quoted in the README
    console.log(`switch→first ack ${Math.round(resumedMs)}ms`);
    assert(resumedMs < 1000, `writes resumed ${Math.round(resumedMs)}ms after the switch`);
    // What the primary the sentinels name holds is the outcome (its replicas follow it later).
    await using primary = await cluster.node(next).connect();
    const stored = new Set(
      ((await primary.send(["LRANGE", list, 0, -1])) as Uint8Array[]).map((b) =>
        new TextDecoder().decode(b)
      ),
    );
    // A definite failure means "not applied": none of them may be in the data.
    const definite = outcomes.filter((o) =>
      !o.ok && !(o.error instanceof WaitError) && !(o.error instanceof OutcomeUnknownError)
    );
    assertEquals(definite.filter((o) => stored.has(o.value)).map((o) => String(o.error)), []);
    // Every acknowledged append is there.
    assertEquals(outcomes.filter((o) => o.ok && !stored.has(o.value)).map((o) => o.value), []);
  } finally {
    running = false;
    await Promise.all(loops);
  }
});

/**
 * A replica that Sentinel never promotes and cannot re-point (`REPLICAOF` denied by its ACL):
 * it keeps following a deposed primary, which holds a silent primary's window open.
 */
async function holdReplicaBack(stuck: RedisProcess): Promise<void> {
  await using conn = await stuck.connect();
  await conn.send(["CONFIG", "SET", "replica-priority", "0"]); // never promoted
  await conn.send(["ACL", "SETUSER", "default", "-replicaof", "-slaveof"]);
}

/** WAIT 1 and a reconnect policy that keeps retrying through the silence guard's tests. */
function guardedConfig(
  cluster: Parameters<typeof sentinelConfig>[0],
): ReturnType<typeof sentinelConfig> {
  return sentinelConfig(cluster, {
    waitReplicas: 1,
    waitTimeoutMs: 500,
    reconnectAttempts: 200,
    reconnectBackoffMs: 20,
    reconnectMaxBackoffMs: 200,
  });
}

/** The client's "was replaced" log lines from now on (until `resetLogging`). */
async function captureReplacedLines(): Promise<string[]> {
  const lines: string[] = [];
  await configureCliLogging({
    format: "text",
    write: (line) => {
      if (line.includes("was replaced")) lines.push(line);
    },
  });
  return lines;
}

/** Waits until Sentinel promoted `node` (a new connection per look: Sentinel kills its clients). */
function waitPromoted(node: RedisProcess): Promise<void> {
  return waitFor(async () => {
    await using conn = await node.connect();
    const role = await conn.send(["ROLE"]);
    return Array.isArray(role) && replyToString(role[0]) === "master"
      ? { done: true, value: undefined }
      : { done: false, observed: "not promoted yet" };
  }, { what: "Sentinel to promote the replica", timeoutMs: 30_000, intervalMs: 5 });
}

/** Waits until the deposed `node` follows the new primary with its link up. */
function waitFollowing(node: RedisProcess): Promise<void> {
  return waitFor(async () => {
    await using conn = await node.connect();
    const role = await conn.send(["ROLE"]);
    return Array.isArray(role) && replyToString(role[0]) === "slave" &&
        replyToString(role[3]) === "connected"
      ? { done: true, value: undefined }
      : { done: false, observed: JSON.stringify(role) };
  }, { what: "the old primary to follow the new one", timeoutMs: 30_000 });
}

Deno.test("RedisHaClient never confirms a durable write that a paused primary acknowledges after Sentinel promoted another node", async () => {
  // The old primary resumes once a replica is promoted, and the other
  // replica keeps following it: it refuses Sentinel's REPLICAOF (an ACL),
  // which holds open the window where Sentinel has not re-pointed it yet.
  // WAIT 1 passes there; those writes vanish when the old primary is
  // demoted and both resynchronise from the new one.
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const [old, stuck, promoted] = cluster.nodes;
  await holdReplicaBack(stuck!);
  const config = guardedConfig(cluster);
  const replacedLines = await captureReplacedLines();
  try {
    await using client = await RedisHaClient.connect(config);
    const load = writers(client, `${config.namespace}:resume`, 20);
    try {
      await waitAcked(load, 300, "writes before the pause");
      old!.kill("SIGSTOP");
      // A new connection per look: Sentinel kills the promoted node's clients.
      await waitPromoted(promoted!);
      old!.kill("SIGCONT");
      const next = await cluster.waitForAgreement({ excluding: old!.endpoint, timeoutMs: 60_000 });
      assertEquals(formatEndpoint(next), formatEndpoint(promoted!.endpoint));
      // The old primary is demoted and resynchronised from the new one: what it took is gone.
      await waitFollowing(old!);
      await waitAcked(load, 300, "writes on the new primary");
      await load.stop();
      await assertAllPresent(cluster.node(next), load.acked().map((w) => w.key));
      // The guard was exercised: it refused acknowledgements of the resumed primary.
      assert(
        replacedLines.some((l) => l.includes("was silent for")),
        `no acknowledgement was withheld:\n${replacedLines.join("\n")}`,
      );
    } finally {
      old!.kill("SIGCONT");
      await load.stop();
    }
  } finally {
    await resetLogging();
  }
});

Deno.test("RedisHaClient never confirms a durable write that a primary back from a full disk acknowledges while Sentinel fails it over", async () => {
  // A node that cannot persist refuses writes and Sentinel's PINGs (MISCONF), so Sentinel
  // fails it over. If it recovers meanwhile, it acknowledges writes again; the other replica
  // (held on it, as in the test above) acknowledges their WAIT, and the failover discards them.
  await using cluster = await startCluster({
    replicas: 2,
    sentinels: 3,
    extraConfig: ["enable-protected-configs yes"],
  });
  const [old, stuck, promoted] = cluster.nodes;
  await holdReplicaBack(stuck!);
  const config = guardedConfig(cluster);
  const replacedLines = await captureReplacedLines();
  await using gone = await tempDir("full-disk-");
  try {
    await using client = await RedisHaClient.connect(config);
    const load = writers(client, `${config.namespace}:disk`, 20);
    await using conn = await old!.connect();
    const dir = replyToString(((await conn.send(["CONFIG", "GET", "dir"])) as string[])[1]!)!;
    try {
      await waitAcked(load, 300, "writes before the disk fills");
      // The disk is "full": a snapshot fails, and the node refuses writes (MISCONF).
      await conn.send(["CONFIG", "SET", "save", "3600 1"]);
      await conn.send(["CONFIG", "SET", "dir", await Deno.realPath(gone.path)]);
      await Deno.remove(gone.path, { recursive: true });
      await conn.send(["BGSAVE"]);
      await waitPromoted(promoted!);
      // Room again: the old primary saves and takes writes while Sentinel demotes it.
      await conn.send(["CONFIG", "SET", "dir", dir]);
      await conn.send(["BGSAVE"]);
      const next = await cluster.waitForAgreement({ excluding: old!.endpoint, timeoutMs: 60_000 });
      assertEquals(formatEndpoint(next), formatEndpoint(promoted!.endpoint));
      await waitFollowing(old!);
      await waitAcked(load, 300, "writes on the new primary");
      await load.stop();
      await assertAllPresent(cluster.node(next), load.acked().map((w) => w.key));
      assert(
        load.writes.some((w) => w.error instanceof PersistenceError),
        "no write was refused for the full disk",
      );
      assert(
        replacedLines.some((l) => l.includes("could not persist")),
        `no acknowledgement was withheld:\n${replacedLines.join("\n")}`,
      );
    } finally {
      await load.stop();
    }
  } finally {
    await resetLogging();
  }
});
