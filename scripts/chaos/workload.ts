/**
 * The fault suite's workload, through the library in sentinel mode: writers
 * of idempotent durable SETs, non-idempotent durable RPUSHes and event
 * appends (unique ids); lease contenders for the leader lease and a job lease
 * doing fenced writes while they believe they hold it; a reader. Every
 * operation goes into the run's history.
 */

import { delay } from "../../lib/common/delay.ts";
import type { RedisHaClient } from "../../lib/ha/client.ts";
import { type Config, configFromOptions } from "../../lib/ha/config.ts";
import { campaign } from "../../lib/state/lease.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import type { History } from "./history.ts";

/** The leases contenders campaign for, and how many contend for each. */
export const LEASES: ReadonlyArray<{ name: string; contenders: number }> = [
  { name: "leader", contenders: 3 },
  { name: "job.chaos", contenders: 2 },
];

/** The job whose event history holds the fenced writes of `lease`. */
export function fencedJob(lease: string): string {
  return `fenced_${lease.replaceAll(".", "_")}`;
}

/** The job the plain event appends go to. */
export const APPEND_JOB = "chaos_events";
/** The list the RPUSH writers append to. */
export function listKey(namespace: string): string {
  return `${namespace}:chaos:list`;
}
/** The prefix of the SET writers' keys. */
export function setPrefix(namespace: string): string {
  return `${namespace}:chaos:set`;
}

/** The client configuration of a run. */
export function workloadConfig(sentinels: string, masterName: string, wait: number): Config {
  return configFromOptions({
    haMode: "sentinel",
    sentinels,
    sentinelMaster: masterName,
    waitReplicas: wait,
    waitTimeoutMs: 500,
    reconnectAttempts: 20,
    reconnectBackoffMs: 100,
    reconnectMaxBackoffMs: 1000,
    namespace: `chaos_${crypto.randomUUID().slice(0, 8)}`,
  });
}

/** A running workload. */
export class Workload {
  readonly #stop = new AbortController();
  readonly #tasks: Promise<void>[] = [];
  readonly #closers: Array<() => Promise<void>> = [];

  private constructor() {}

  /** Starts every writer, contender and the reader. */
  static async start(config: Config, history: History): Promise<Workload> {
    const w = new Workload();
    const options = { client: { operationTimeoutMs: 8000 } };
    const store = await StateStore.connect(config, options);
    w.#closers.push(() => store.close());
    const client: RedisHaClient = store.client;
    let seq = 0;
    const stop = w.#stop.signal;
    const loop = (fn: () => Promise<unknown>, pauseMs: number): void => {
      w.#tasks.push((async () => {
        while (!stop.aborted) {
          await fn();
          await delay(pauseMs, stop).catch(() => {});
        }
      })());
    };
    for (let i = 0; i < 3; i++) {
      loop(() => {
        const id = `${setPrefix(config.namespace)}:${seq++}`;
        return history.op(
          { kind: "set", id },
          () => client.durable(["SET", id, "1"], { idempotent: true }),
        );
      }, 5);
      loop(() => {
        const id = `v${seq++}`;
        return history.op(
          { kind: "rpush", id },
          () => client.durable(["RPUSH", listKey(config.namespace), id]),
        );
      }, 5);
      loop(() => {
        const id = `e${seq++}`;
        return history.op(
          { kind: "append", id },
          () => store.events.append(APPEND_JOB, { id, type: "chaos" }),
        );
      }, 5);
    }
    loop(() => {
      const id = `${setPrefix(config.namespace)}:${Math.max(0, seq - 50)}`;
      return history.op({ kind: "read", id }, () => client.command(["GET", id]));
    }, 20);
    for (const { name, contenders } of LEASES) {
      for (let c = 0; c < contenders; c++) {
        const own = await StateStore.connect(config, options);
        w.#closers.push(() => own.close());
        w.#tasks.push(contend(own, name, `${name}-holder-${c}`, history, stop));
      }
    }
    return w;
  }

  /** Stops every task and closes the clients. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#tasks);
    await Promise.allSettled(this.#closers.map((close) => close()));
  }
}

/** One contender: campaign, fenced writes while holding, hand over after a while. */
async function contend(
  store: StateStore,
  lease: string,
  holder: string,
  history: History,
  stop: AbortSignal,
): Promise<void> {
  let n = 0;
  while (!stop.aborted) {
    try {
      const held = await campaign(store, lease, {
        holder,
        ttlMs: 3000,
        retryPeriodMs: 100,
        keepAlive: {},
        signal: stop,
      });
      const from = history.now();
      let to: number | undefined;
      held.signal.addEventListener("abort", () => to ??= history.now(), { once: true });
      const holdFor = 500 + Math.random() * 1000;
      const until = AbortSignal.any([held.signal, stop, AbortSignal.timeout(holdFor)]);
      while (!until.aborted) {
        const id = `${holder}-${n++}`;
        await history.op(
          { kind: "fenced", id, lease, token: held.token, holder },
          () =>
            store.events.append(fencedJob(lease), {
              id,
              type: "fenced",
              data: { token: held.token, holder },
            }, { fence: held, signal: until }),
        );
        await delay(50, until).catch(() => {});
      }
      to ??= history.now();
      history.hold({ lease, holder, token: held.token, from, to });
      await held.release().catch(() => {});
    } catch {
      await delay(100, stop).catch(() => {});
    }
  }
}
