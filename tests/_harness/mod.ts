/**
 * Shared integration-test harness: real redis-server / redis-sentinel
 * processes on free loopback ports, in temp dirs under `.tmp/`, all torn down
 * by `await using`, even when a test fails.
 */

import { LocalCluster, type LocalClusterOptions } from "../../lib/process/local_cluster.ts";
import { RedisProcess, type RedisServerOptions } from "../../lib/process/redis_process.ts";
import { type Config, configFromOptions, type ConfigOptions } from "../../lib/ha/config.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { StateStore, type StateStoreOptions } from "../../lib/state/state_store.ts";

export { LocalCluster, RedisProcess };
export { waitFor } from "../../lib/common/wait_for.ts";

/** Where every test puts its temp dirs (the `int` permission set allows only this). */
export const TEST_TMP = ".tmp";

/** A temp dir under `.tmp/`, removed on dispose. */
export async function tempDir(prefix = "test-"): Promise<AsyncDisposable & { path: string }> {
  await Deno.mkdir(TEST_TMP, { recursive: true });
  const path = await Deno.makeTempDir({ dir: TEST_TMP, prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** A standalone redis-server in its own temp dir, stopped and removed on dispose. */
export async function startRedis(
  options: Omit<RedisServerOptions, "dir"> = {},
): Promise<RedisProcess> {
  await Deno.mkdir(TEST_TMP, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: TEST_TMP, prefix: "redis-" });
  try {
    return await RedisProcess.startServer({ ...options, dir, removeDirOnStop: true });
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/** A primary, replicas and sentinels, torn down on dispose. */
export function startCluster(
  options: Omit<LocalClusterOptions, "baseDir"> = {},
): Promise<LocalCluster> {
  return LocalCluster.start({ ...options, baseDir: TEST_TMP });
}

/** Sentinel-mode config for a local cluster, with test-friendly fast retries. */
export function sentinelConfig(cluster: LocalCluster, extra: ConfigOptions = {}): Config {
  return configFromOptions({
    haMode: "sentinel",
    sentinels: cluster.sentinelEndpoints.map(formatEndpoint),
    sentinelMaster: cluster.masterName,
    reconnectAttempts: 30,
    reconnectBackoffMs: 100,
    reconnectMaxBackoffMs: 1000,
    namespace: `test_${crypto.randomUUID().slice(0, 8)}`,
    ...extra,
  });
}

/** Single-mode config for one redis process. */
export function singleConfig(proc: RedisProcess, extra: ConfigOptions = {}): Config {
  return configFromOptions({
    url: `redis://${formatEndpoint(proc.endpoint)}`,
    namespace: `test_${crypto.randomUUID().slice(0, 8)}`,
    ...extra,
  });
}

/** A background loop of durable, idempotent SETs; records every acknowledged key. */
export interface WriteLoop {
  /** Keys whose write was reported successful, in order. */
  readonly acked: string[];
  /** Errors the loop saw. */
  readonly errors: unknown[];
  /** Stops the loop and waits for it. */
  stop(): Promise<void>;
}

/** Starts `concurrency` writers issuing `client.durable(SET key value)` until stopped. */
export function startWriteLoop(
  client: { durable(args: string[], options: { idempotent: boolean }): Promise<unknown> },
  prefix: string,
  concurrency = 4,
): WriteLoop {
  const acked: string[] = [];
  const errors: unknown[] = [];
  let running = true;
  let next = 0;
  const writers = Array.from({ length: concurrency }, async () => {
    while (running) {
      const key = `${prefix}:${next++}`;
      try {
        await client.durable(["SET", key, key], { idempotent: true });
        acked.push(key);
      } catch (error) {
        errors.push(error);
      }
    }
  });
  return {
    acked,
    errors,
    stop: async () => {
      running = false;
      await Promise.all(writers);
    },
  };
}

/** Returns the keys among `keys` that are missing on the node at `endpoint`. */
export async function missingKeys(
  proc: RedisProcess,
  keys: readonly string[],
): Promise<string[]> {
  await using conn = await proc.connect();
  const exists = await Promise.all(keys.map((k) => conn.send(["EXISTS", k])));
  return keys.filter((_, i) => exists[i] !== 1);
}

/**
 * Fails unless every key in `keys` exists on `proc`, naming how many are
 * missing and a few of them. (A diff of two long arrays is quadratic: an
 * `assertEquals(missing, [])` that fails on tens of thousands of lost keys
 * exhausts memory before it reports.)
 */
export async function assertAllPresent(
  proc: RedisProcess,
  keys: readonly string[],
  what = "acknowledged keys",
): Promise<void> {
  const missing = await missingKeys(proc, keys);
  if (missing.length > 0) {
    throw new Error(
      `${missing.length} of ${keys.length} ${what} are missing on ${
        formatEndpoint(proc.endpoint)
      }, e.g. ${missing.slice(0, 5).join(", ")}`,
    );
  }
}

/** A state store over a fresh client for `config`; closing it closes the client. */
export function openStore(config: Config, options: StateStoreOptions = {}): Promise<StateStore> {
  return StateStore.connect(config, options);
}
