/**
 * The local Sentinel failover smoke: 3 redis + 3 sentinels on free loopback
 * ports, a durable write through Sentinel mode, kill -9 of the primary, and
 * a write and read through the promoted replica.
 *
 * @module
 */

import { RedisHaClient } from "../ha/client.ts";
import { configFromOptions } from "../ha/config.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { RedisHaError } from "../common/errors.ts";
import { LocalCluster } from "../process/local_cluster.ts";
import { replyToString } from "../protocol/resp.ts";

/** Options for {@link runLocalSmoke}. */
export interface LocalSmokeOptions {
  /** Directory for the cluster's temp dir. */
  baseDir: string;
  /** Writes one progress or marker line. */
  report: (line: string) => void;
  /** Aborts the smoke (e.g. Ctrl-C); everything started is still cleaned up. */
  signal?: AbortSignal | undefined;
}

/** What a passing smoke measured. */
export interface LocalSmokeResult {
  /** The primary before the kill. */
  readonly initialPrimary: string;
  /** The promoted primary. */
  readonly promotedPrimary: string;
  /** From kill -9 to the first acknowledged durable write on the new primary. */
  readonly recoveryMs: number;
  /** From kill -9 to all sentinels agreeing on the new primary. */
  readonly promotionMs: number;
  /** Whole smoke wall time. */
  readonly wallMs: number;
}

/** The step that failed, for the exit message. */
export class SmokeStepError extends RedisHaError {
  /** Error class name. */
  override readonly name = "SmokeStepError";
  /** The failed step. */
  readonly step: string;

  /** Creates the error. */
  constructor(step: string, cause: unknown) {
    super(
      "CONNECTION",
      `Smoke failed at step "${step}": ${cause instanceof Error ? cause.message : cause}`,
      {
        cause,
      },
    );
    this.step = step;
  }
}

/** Runs the smoke; throws {@link SmokeStepError} naming the failed step. */
export async function runLocalSmoke(options: LocalSmokeOptions): Promise<LocalSmokeResult> {
  const started = performance.now();
  let step = "start 3 redis + 3 sentinels";
  const run = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    step = name;
    options.signal?.throwIfAborted();
    options.report(`step: ${name}`);
    return await fn();
  };
  let cluster: LocalCluster | undefined;
  let client: RedisHaClient | undefined;
  try {
    cluster = await run(
      step,
      () => LocalCluster.start({ baseDir: options.baseDir, signal: options.signal }),
    );
    const c = cluster;
    const config = configFromOptions({
      haMode: "sentinel",
      sentinels: c.sentinelEndpoints.map(formatEndpoint),
      sentinelMaster: c.masterName,
      waitReplicas: 1,
      waitTimeoutMs: 1000,
      reconnectAttempts: 30,
      reconnectBackoffMs: 100,
      reconnectMaxBackoffMs: 1000,
      namespace: `smoke_${crypto.randomUUID().slice(0, 8)}`,
    });
    client = await run(
      "connect in sentinel mode",
      () => RedisHaClient.connect(config, { signal: options.signal }),
    );
    const ha = client;
    const key = `${config.namespace}:job:smoke`;
    const initial = JSON.stringify({ status: "running", at: new Date().toISOString() });
    await run(
      "durable write through Sentinel mode (WAIT 1)",
      () => ha.durable(["SET", key, initial], { idempotent: true, signal: options.signal }),
    );
    const initialPrimary = ha.primary!.address;
    options.report(`local_initial_write_ok=${initialPrimary}`);
    const old = c.node(ha.primary!.endpoint);
    const killedAt = performance.now();
    await run(`kill -9 the primary ${initialPrimary}`, () => {
      old.kill("SIGKILL");
      return old.waitExit();
    });
    // The client starts writing at once; it must land on the promoted replica by itself.
    const after = JSON.stringify({ status: "done", at: new Date().toISOString() });
    let recoveryMs = 0;
    const writing = ha.durable(["SET", `${key}:after`, after], {
      idempotent: true,
      signal: options.signal,
    }).then(() => {
      recoveryMs = performance.now() - killedAt;
    });
    writing.catch(() => {}); // Observed below; a failure must not go unhandled meanwhile.
    const promoted = await run(
      "wait for Sentinel promotion",
      () => c.waitForAgreement({ excluding: old.endpoint, signal: options.signal }),
    );
    const promotionMs = performance.now() - killedAt;
    await run("durable write through the promoted replica", () => writing);
    await run("read both records back", async () => {
      const [a, b] = await Promise.all([
        ha.command(["GET", key]),
        ha.command(["GET", `${key}:after`]),
      ]);
      if (replyToString(a) !== initial || replyToString(b) !== after) {
        throw new Error(`read back ${replyToString(a)} and ${replyToString(b)}`);
      }
      if (ha.primary?.address !== formatEndpoint(promoted)) {
        throw new Error(
          `client is on ${ha.primary?.address}, sentinels agree on ${formatEndpoint(promoted)}`,
        );
      }
    });
    options.report(
      `local_post_failover_write_read_ok primary=${formatEndpoint(promoted)} ` +
        `promotion_ms=${Math.round(promotionMs)} recovery_ms=${Math.round(recoveryMs)}`,
    );
    return {
      initialPrimary,
      promotedPrimary: formatEndpoint(promoted),
      recoveryMs,
      promotionMs,
      wallMs: performance.now() - started,
    };
  } catch (error) {
    throw new SmokeStepError(step, error);
  } finally {
    await client?.close();
    await cluster?.close();
  }
}
