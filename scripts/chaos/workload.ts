/**
 * The fault suite's workload, through the library in sentinel mode: writers
 * of idempotent durable SETs, non-idempotent durable RPUSHes and event
 * appends (unique ids); lease contenders for the leader lease and a job lease
 * doing fenced writes while they believe they hold it; a reader. Every
 * operation goes into the run's history.
 */

import { delay } from "../../lib/common/delay.ts";
import type { Secret } from "../../lib/common/secret.ts";
import type { RedisHaClient } from "../../lib/ha/client.ts";
import { type Config, configFromOptions } from "../../lib/ha/config.ts";
import { campaign } from "../../lib/state/lease.ts";
import { StateStore } from "../../lib/state/state_store.ts";
import type { History } from "./history.ts";
import type { WorkloadControl } from "./fault.ts";
import { SkewClock } from "./skew_clock.ts";

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

/**
 * The ACL user the first leader contender logs in as when a run asks for it
 * (the `clock` nemesis): taking its commands away stops its renewals while
 * every other client goes on.
 */
export const CONTENDER_USER = { name: "chaos-contender", holder: "leader-holder-0" } as const;

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
export class Workload implements WorkloadControl {
  readonly #stop = new AbortController();
  readonly #tasks: Promise<void>[] = [];
  readonly #closers: Array<() => Promise<void>> = [];
  readonly #clocks = new Map<string, SkewClock>();
  readonly #holding = new Set<string>();
  /** The contenders' names, per lease. */
  readonly contenders = new Map<string, string[]>();

  /** Sets one contender's clock rate (see {@link SkewClock}). */
  skewClock(holder: string, rate: number): void {
    const clock = this.#clocks.get(holder);
    if (clock === undefined) throw new RangeError(`no contender "${holder}"`);
    clock.rate = rate;
  }

  /** Whether `holder` believes it holds its lease now. */
  holds(holder: string): boolean {
    return this.#holding.has(holder);
  }

  private constructor() {}

  /** Starts every writer, contender and the reader. */
  static async start(
    config: Config,
    history: History,
    own: {
      contenderPassword?: Secret | undefined;
      /** The writers' pause between operations, ms (5 by default; a soak writes less often). */
      pauseMs?: number | undefined;
    } = {},
  ): Promise<Workload> {
    const pauseMs = own.pauseMs ?? 5;
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
      }, pauseMs);
      loop(() => {
        const id = `v${seq++}`;
        return history.op(
          { kind: "rpush", id },
          () => client.durable(["RPUSH", listKey(config.namespace), id]),
        );
      }, pauseMs);
      loop(() => {
        const id = `e${seq++}`;
        return history.op(
          { kind: "append", id },
          () => store.events.append(APPEND_JOB, { id, type: "chaos" }),
        );
      }, pauseMs);
    }
    loop(() => {
      const id = `${setPrefix(config.namespace)}:${Math.max(0, seq - 50)}`;
      return history.op({ kind: "read", id }, () => client.command(["GET", id]));
    }, pauseMs * 4);
    for (const { name, contenders } of LEASES) {
      const names: string[] = [];
      for (let c = 0; c < contenders; c++) {
        const holder = `${name}-holder-${c}`;
        const asUser = holder === CONTENDER_USER.holder && own.contenderPassword !== undefined;
        const store = await StateStore.connect(
          asUser
            ? { ...config, username: CONTENDER_USER.name, password: own.contenderPassword }
            : config,
          options,
        );
        w.#closers.push(() => store.close());
        const clock = new SkewClock();
        w.#clocks.set(holder, clock);
        names.push(holder);
        w.#tasks.push(contend(store, name, holder, history, stop, { clock, holding: w.#holding }));
      }
      w.contenders.set(name, names);
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

/**
 * One contender: campaign, fenced writes while holding, hand over after a
 * while (or, while its clock is skewed, hold until it loses the lease).
 */
async function contend(
  store: StateStore,
  lease: string,
  holder: string,
  history: History,
  stop: AbortSignal,
  own: { clock: SkewClock; holding: Set<string> },
): Promise<void> {
  let n = 0;
  while (!stop.aborted) {
    try {
      const held = await campaign(store, lease, {
        holder,
        ttlMs: 3000,
        retryPeriodMs: 100,
        keepAlive: {},
        clock: own.clock,
        signal: stop,
      });
      const from = history.now();
      let to: number | undefined;
      own.holding.add(holder);
      held.signal.addEventListener("abort", () => {
        to ??= history.now();
        own.holding.delete(holder);
      }, { once: true });
      // Hands over after a while; a skewed contender keeps the lease until it believes it lost it.
      const handOverAt = performance.now() + 500 + Math.random() * 1000;
      const until = AbortSignal.any([held.signal, stop]);
      while (!until.aborted && (own.clock.rate !== 1 || performance.now() < handOverAt)) {
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
      own.holding.delete(holder);
      history.hold({ lease, holder, token: held.token, from, to });
      await held.release().catch(() => {});
      // Let the others campaign first: a holder that campaigns again at once wins every time.
      await delay(100 + Math.random() * 300, stop).catch(() => {});
    } catch {
      await delay(100, stop).catch(() => {});
    }
  }
}
