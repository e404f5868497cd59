/**
 * The replica-read workload: writers that bump a counter each (a durable
 * SET of the next version) and read it back at once (read-your-writes),
 * and a reader that reads every counter in turn (bounded lag), all through
 * clients with `MN_REDIS_READ_FROM=replica-preferred`. What they
 * acknowledged and saw goes to {@link checkReads}.
 */

import { delay } from "../../lib/common/delay.ts";
import { type Config, configFromOptions, configToOptions } from "../../lib/ha/config.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import {
  type AckedVersion,
  checkReads,
  type ObservedRead,
  type ReadVerdict,
} from "./read_checker.ts";

/** Options of {@link ReplicaReaders.start}. */
export interface ReplicaReadersOptions {
  /** Writer clients (each its own counter). @default {2} */
  writers?: number | undefined;
  /** `MN_REDIS_READ_MAX_LAG_MS` of every client. @default {100} */
  maxLagMs?: number | undefined;
  /** Pause between a writer's rounds and between the reader's reads, ms. @default {2} */
  pauseMs?: number | undefined;
}

/** The running workload. */
export class ReplicaReaders {
  readonly acks: AckedVersion[] = [];
  readonly reads: ObservedRead[] = [];
  /** Read errors by message (a read may fail during a failover; it is then not checked). */
  readonly errors = new Map<string, number>();
  readonly maxLagMs: number;
  readonly #stop = new AbortController();
  readonly #tasks: Promise<void>[] = [];
  readonly #clients: RedisHaClient[] = [];
  readonly #start = performance.now();

  private constructor(maxLagMs: number) {
    this.maxLagMs = maxLagMs;
  }

  /** Connects the clients and starts writing and reading. */
  static async start(base: Config, options: ReplicaReadersOptions = {}): Promise<ReplicaReaders> {
    const maxLagMs = options.maxLagMs ?? 100;
    const pauseMs = options.pauseMs ?? 2;
    const w = new ReplicaReaders(maxLagMs);
    const config = configFromOptions({
      ...configToOptions(base),
      readFrom: "replica-preferred",
      readMaxLagMs: maxLagMs,
    });
    const clientOptions = { operationTimeoutMs: 8000 };
    try {
      const keys: string[] = [];
      for (let i = 0; i < (options.writers ?? 2); i++) {
        const client = await RedisHaClient.connect(config, clientOptions);
        w.#clients.push(client);
        const key = `${config.namespace}:readers:counter:${i}`;
        keys.push(key);
        w.#tasks.push(w.#write(client, `writer-${i}`, key, pauseMs));
      }
      const reader = await RedisHaClient.connect(config, clientOptions);
      w.#clients.push(reader);
      w.#tasks.push(w.#readAll(reader, keys, pauseMs));
    } catch (error) {
      await w.stop();
      throw error;
    }
    return w;
  }

  #now(): number {
    return performance.now() - this.#start;
  }

  async #write(client: RedisHaClient, name: string, key: string, pauseMs: number): Promise<void> {
    let version = 0;
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      const next = version + 1;
      try {
        await client.durable(["SET", key, String(next)], { idempotent: true, signal: stop });
        version = next;
        this.acks.push({ key, version, client: name, ackedAt: this.#now() });
      } catch {
        // Not acknowledged (a failover, a WAIT shortfall): the next round writes a higher version.
        version = next;
      }
      await this.#read(client, name, key);
      await delay(pauseMs, stop).catch(() => {});
    }
  }

  async #readAll(client: RedisHaClient, keys: readonly string[], pauseMs: number): Promise<void> {
    const stop = this.#stop.signal;
    for (let i = 0; !stop.aborted; i++) {
      await this.#read(client, "reader", keys[i % keys.length]!);
      await delay(pauseMs, stop).catch(() => {});
    }
  }

  async #read(client: RedisHaClient, name: string, key: string): Promise<void> {
    const issuedAt = this.#now();
    try {
      const served = await client.readServed(["GET", key], { signal: this.#stop.signal });
      this.reads.push({
        key,
        client: name,
        issuedAt,
        version: served.reply === null ? 0 : Number(served.reply),
        servedBy: served.servedBy,
        node: served.node,
      });
    } catch (error) {
      if (this.#stop.signal.aborted) return;
      const message = error instanceof Error ? error.name : String(error);
      this.errors.set(message, (this.errors.get(message) ?? 0) + 1);
    }
  }

  /** Reads served by a replica so far. */
  get replicaReads(): number {
    let n = 0;
    for (const r of this.reads) if (r.servedBy === "replica") n++;
    return n;
  }

  /** The checker's verdict over everything so far. */
  verdict(): ReadVerdict {
    return checkReads(this.acks, this.reads, this.maxLagMs);
  }

  /** Stops every loop and closes the clients. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#tasks);
    await Promise.allSettled(this.#clients.map((c) => c.close()));
  }
}
