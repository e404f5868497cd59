/**
 * Typed events the client emits, so callers can count failovers and
 * reconnects without parsing logs.
 *
 * @module
 */

/** Every event and its payload. Addresses are `host:port`, never with credentials. */
export interface HaEventMap {
  /** The confirmed primary changed. */
  failover: { from: string | undefined; to: string; configEpoch: number | undefined };
  /** A reconnectable failure; the client waits `delayMs` then re-resolves. */
  reconnecting: { attempt: number; delayMs: number; error: string; primary: string | undefined };
  /**
   * A connection to the primary was re-established after `attempts` failed
   * attempts; `retried` commands failed on the old connection and were retried.
   */
  reconnected: { primary: string; attempts: number; retried: number };
  /** A sentinel reports another primary than the one chosen. */
  "stale-sentinel": {
    sentinel: string;
    reported: string;
    configEpoch: number;
    chosen: string;
    chosenEpoch: number;
  };
  /** The active probe of the primary failed or found it no longer master. */
  "probe-failed": { primary: string; error: string };
  /** A Sentinel pub/sub event about our master (a hint to re-resolve). */
  "sentinel-event": { sentinel: string; channel: string; payload: string };
}

/** Name of an event in {@link HaEventMap}. */
export type HaEventType = keyof HaEventMap;

/** A listener for one event type. */
export type HaEventListener<K extends HaEventType> = (detail: HaEventMap[K]) => void;

/**
 * The client's events, for listening only: nothing outside the client can emit
 * one, so a listener can trust what it hears.
 */
export interface HaEvents {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof HaEventMap>(type: K, listener: (detail: HaEventMap[K]) => void): () => void;
}

/**
 * The emitter behind {@link HaEvents}, owned by the client. Listener errors
 * never reach the emitter. Internal: not exported from `mod.ts`.
 */
export class HaEventEmitter implements HaEvents {
  readonly #listeners = new Map<HaEventType, Set<(detail: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends HaEventType>(type: K, listener: HaEventListener<K>): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, set = new Set());
    set.add(listener as (detail: never) => void);
    return () => set.delete(listener as (detail: never) => void);
  }

  /** Calls every listener of `type` with `detail`. */
  emit<K extends HaEventType>(type: K, detail: HaEventMap[K]): void {
    for (const listener of this.#listeners.get(type) ?? []) {
      try {
        (listener as HaEventListener<K>)(detail);
      } catch {
        // A faulty listener must not break the client.
      }
    }
  }
}
