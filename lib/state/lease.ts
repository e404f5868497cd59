/**
 * Leader and job leases with fencing tokens, and a Kubernetes-style
 * keep-alive that tells the holder it lost the lease before anyone else can
 * be granted it.
 *
 * - Acquisition is a durable write (WAIT per config) and returns a token
 *   strictly greater than every token granted before for that lease (see
 *   `lib/state/fencing.ts`).
 * - Renewal is the hot path: no WAIT, never queued behind a durable write,
 *   and it only extends a lease still held with the same holder and token. It
 *   never re-creates a missing lease: after a failover that lost the grant,
 *   the holder is told.
 *
 * @module
 */

import { readWith, runScript } from "../ha/client.ts";
import type { StateStore } from "./state_store.ts";
import { type Clock, SYSTEM_CLOCK } from "../common/clock.ts";
import {
  type FenceToken,
  readOptions,
  type StateReadOptions,
  type StoreContext,
} from "./_context.ts";
import { LUA_CHECKED, LUA_PRELUDE, mapScriptError } from "./_lua.ts";
import { ReplyError } from "../common/errors.ts";
import { LeaseHeldError, LeaseLostError, ValidationError } from "../common/state_errors.ts";
import { LUA_NEXT_TOKEN } from "./fencing.ts";
import { checkHolder, checkId } from "./keys.ts";
import { replyToNumber, replyToString, type RespReply } from "../protocol/resp.ts";
import { Script } from "../protocol/script.ts";

const ACQUIRE = new Script(
  "lease-acquire",
  LUA_PRELUDE + LUA_NEXT_TOKEN + `
local err = expect_type(KEYS[1], 'hash') or expect_type(KEYS[2], 'hash')
if err then return err end
local current = redis.call('HMGET', KEYS[1], 'holder', 'token')
if current[1] then
  if current[1] == ARGV[1] then
    -- The same holder again (a retry, or a holder that thought it lost it): extend by the full
    -- TTL, so the holder, timing the lease from its send time, never outlives the key.
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, current[2], tonumber(ARGV[2]), current[1]}
  end
  return {0, current[2], redis.call('PTTL', KEYS[1]), current[1]}
end
local token, terr = next_token(KEYS[2], tonumber(ARGV[3]))
if terr then return terr end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', string.format('%.0f', token),
  'acquiredAt', now[1] * 1000 + math.floor(now[2] / 1000))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, string.format('%.0f', token), tonumber(ARGV[2]), ARGV[1]}
`,
);

const RENEW = new Script(
  "lease-renew",
  LUA_CHECKED + `
local current = redis.pcall('HMGET', KEYS[1], 'holder', 'token')
local err = failed(current, KEYS[1], 'hash')
if err then return err end
if current[1] == ARGV[1] and current[2] == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1}
end
return {0, current[1] or '', current[2] or ''}
`,
  "allow-oom",
);

const RELEASE = new Script(
  "lease-release",
  LUA_CHECKED + `
local current = redis.pcall('HMGET', KEYS[1], 'holder', 'token')
local err = failed(current, KEYS[1], 'hash')
if err then return err end
if current[1] == ARGV[1] and current[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`,
  "allow-oom",
);

const OBSERVE = new Script(
  "lease-observe",
  LUA_CHECKED + `
local current = redis.pcall('HMGET', KEYS[1], 'holder', 'token', 'acquiredAt')
local err = failed(current, KEYS[1], 'hash')
if err then return err end
if not current[1] then return {} end
return {current[1], current[2], current[3] or '0', redis.call('PTTL', KEYS[1])}
`,
  "no-writes",
);

/** Who holds a lease now. */
export interface LeaseState {
  /** The lease name. */
  readonly lease: string;
  /** The holder id. */
  readonly holder: string;
  /** The holder's fencing token. */
  readonly token: number;
  /** When it was granted (server clock, ms since epoch). */
  readonly acquiredAt: number;
  /** Milliseconds until it expires unless renewed. */
  readonly ttlMs: number;
}

/** Options for {@link acquireLease}. */
export interface AcquireLeaseOptions {
  /** Unique id of the holder (e.g. node id plus a per-process suffix). */
  holder: string;
  /** Lease duration. */
  ttlMs: number;
  /**
   * Keep the lease alive in the background until disposed, Kubernetes
   * style. Omit to renew by hand with {@link Lease.renew}.
   */
  keepAlive?: KeepAliveOptions | undefined;
  /** Aborts the attempt. */
  signal?: AbortSignal | undefined;
  /**
   * The clock the keep-alive (and a campaign's pauses) run on, for tests.
   * @default {SYSTEM_CLOCK}
   */
  clock?: Clock | undefined;
}

/** Keep-alive timing. The holder learns of a loss at `renewDeadlineMs` after the last renewal it sent. */
export interface KeepAliveOptions {
  /**
   * Give up when no renewal succeeded for this long after it was sent.
   * Must be at most `ttlMs - driftMs`. @default {ttlMs * 2 / 3}
   */
  renewDeadlineMs?: number | undefined;
  /** Pause between renewals. Must be below `renewDeadlineMs`. @default {ttlMs / 4} */
  retryPeriodMs?: number | undefined;
  /** Allowance for clock rate differences between holder and server. @default {ttlMs / 10} */
  driftMs?: number | undefined;
  /** Called once when the lease is lost. */
  onLost?: ((error: LeaseLostError) => void) | undefined;
}

/** Options for {@link campaign}. */
export interface CampaignOptions extends AcquireLeaseOptions {
  /** Pause between attempts while someone else holds it. @default {ttlMs / 4} */
  retryPeriodMs?: number | undefined;
}

/** What a granted lease is made from. */
interface LeaseGrant {
  lease: string;
  holder: string;
  token: number;
  ttlMs: number;
  keepAlive: KeepAliveOptions | undefined;
  acquiredSentAt: number;
  clock: Clock;
}

/**
 * The key of the one way to make a {@link Lease} (used by {@link acquireLease}
 * and {@link campaign}). `mod.ts` does not export it, so a caller cannot
 * forge a lease.
 */
export const GRANT_LEASE: unique symbol = Symbol("mn-redis-ha grant lease");

/**
 * A held lease. Dispose it (or call {@link Lease.release}) to release it;
 * `signal` aborts when it is lost. It is also a {@link FenceToken}, so it can
 * be passed as `fence` to fenced writes.
 */
export class Lease implements AsyncDisposable, FenceToken {
  /** The lease name. */
  readonly lease: string;
  /** The holder id. */
  readonly holder: string;
  /** The fencing token this grant carries. */
  readonly token: number;
  readonly #context: StoreContext;
  readonly #ttlMs: number;
  readonly #lost = new AbortController();
  readonly #clock: Clock;
  #keeper: Promise<void> | undefined;
  #stopKeeper = new AbortController();
  #released = false;

  /**
   * Makes a lease from a grant the server gave.
   * @internal Only {@link acquireLease} and {@link campaign} reach it.
   */
  static [GRANT_LEASE](context: StoreContext, init: LeaseGrant): Lease {
    return new Lease(GRANT_LEASE, context, init);
  }

  /** Only {@link acquireLease} makes a lease: a caller cannot forge one. */
  private constructor(grant: unknown, context: StoreContext, init: LeaseGrant) {
    if (grant !== GRANT_LEASE) {
      throw new TypeError("A Lease is made only by acquireLease() or campaign()");
    }
    this.#context = context;
    this.#clock = init.clock;
    this.lease = init.lease;
    this.holder = init.holder;
    this.token = init.token;
    this.#ttlMs = init.ttlMs;
    if (init.keepAlive !== undefined) this.#startKeepAlive(init.keepAlive, init.acquiredSentAt);
  }

  /** Aborts (with a {@link LeaseLostError}) when the lease is lost. */
  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  /** True once the lease is known lost. */
  get lost(): boolean {
    return this.#lost.signal.aborted;
  }

  /**
   * Extends the lease by its TTL if it is still held with this token. Hot
   * path: no WAIT. Throws {@link LeaseLostError} (and aborts `signal`) if
   * the lease is gone or held by someone else.
   */
  async renew(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (this.#released) throw new LeaseLostError(this.lease, "it was released");
    const reply = await runScript(
      this.#context.client,
      RENEW,
      [this.#context.keys.lease(this.lease)],
      [this.holder, String(this.token), this.#ttlMs],
      { idempotent: true, signal: options.signal },
    ).catch((e) => {
      throw mapScriptError(e, { what: `lease "${this.lease}"` });
    });
    const parts = reply as RespReply[];
    if (replyToNumber(parts[0]) === 1) return;
    const holder = replyToString(parts[1]) ?? "";
    const reason = holder === ""
      ? "it expired or its grant was lost in a failover"
      : `it is now held by "${holder}" with token ${replyToString(parts[2])}`;
    throw this.#markLost(reason);
  }

  /** Releases the lease if still held with this token. Returns whether it was. Idempotent. */
  async release(): Promise<boolean> {
    this.#stopKeeper.abort();
    await this.#keeper;
    if (this.#released) return false;
    this.#released = true;
    const reply = await runScript(
      this.#context.client,
      RELEASE,
      [this.#context.keys.lease(this.lease)],
      [this.holder, String(this.token)],
      { durable: true, idempotent: true },
    ).catch((e) => {
      throw mapScriptError(e, { what: `lease "${this.lease}"` });
    });
    return replyToNumber(reply) === 1;
  }

  /** Same as {@link Lease.release}; errors are swallowed (the lease expires anyway). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release().catch(() => {});
  }

  /** Starts the background keep-alive (options checked by {@link keepAliveTiming}). */
  #startKeepAlive(options: KeepAliveOptions, acquiredSentAt: number): void {
    const { periodMs, deadlineMs } = keepAliveTiming(this.#ttlMs, options);
    if (options.onLost !== undefined) {
      const onLost = options.onLost;
      this.#lost.signal.addEventListener("abort", () => onLost(this.#lost.signal.reason), {
        once: true,
      });
    }
    this.#keeper = this.#keep(periodMs, deadlineMs, acquiredSentAt);
  }

  async #keep(periodMs: number, deadlineMs: number, acquiredSentAt: number): Promise<void> {
    const clock = this.#clock;
    let lastSentOk = acquiredSentAt;
    const stop = this.#stopKeeper.signal;
    // The deadline is a timer of its own: a renewal stuck on a hung primary cannot delay it.
    let deadline = new AbortController();
    const arm = (): void => {
      deadline.abort();
      deadline = new AbortController();
      const left = Math.max(0, lastSentOk + deadlineMs - clock.now());
      clock.sleep(left, deadline.signal).then(() => {
        this.#markLost(`no renewal succeeded within renewDeadlineMs (${deadlineMs}ms)`);
        this.#stopKeeper.abort();
      }, () => {});
    };
    arm();
    try {
      while (!stop.aborted && !this.lost) {
        try {
          await clock.sleep(periodMs, stop);
        } catch {
          return;
        }
        const sentAt = clock.now();
        const attempt = AbortSignal.any([stop, this.#lost.signal]);
        try {
          await this.renew({ signal: attempt });
          if (!this.lost) {
            lastSentOk = sentAt;
            arm();
          }
        } catch (error) {
          if (error instanceof LeaseLostError) return;
          // Connection trouble: keep trying until the deadline timer fires.
        }
      }
    } finally {
      deadline.abort();
    }
  }

  #markLost(reason: string): LeaseLostError {
    const error = new LeaseLostError(this.lease, reason);
    if (!this.#lost.signal.aborted) this.#lost.abort(error);
    return this.#lost.signal.reason as LeaseLostError;
  }
}

/**
 * The keep-alive's renewal period and loss deadline for a TTL, with the
 * Kubernetes defaults. Throws {@link ValidationError} when the holder could
 * learn of a loss only after another holder could be granted the lease.
 */
export function keepAliveTiming(
  ttlMs: number,
  options: KeepAliveOptions,
): { periodMs: number; deadlineMs: number } {
  const drift = options.driftMs ?? Math.floor(ttlMs / 10);
  const deadline = options.renewDeadlineMs ?? Math.floor((ttlMs * 2) / 3);
  const period = options.retryPeriodMs ?? Math.floor(ttlMs / 4);
  if (deadline + drift > ttlMs) {
    throw new ValidationError(
      "keepAlive.renewDeadlineMs",
      `${deadline}ms plus drift ${drift}ms exceeds the lease TTL ${ttlMs}ms; the holder would learn of ` +
        "the loss after another holder could be granted the lease",
    );
  }
  if (period <= 0 || period >= deadline) {
    throw new ValidationError(
      "keepAlive.retryPeriodMs",
      `${period}ms must be positive and below renewDeadlineMs (${deadline}ms)`,
    );
  }
  return { periodMs: period, deadlineMs: deadline };
}

function checkLeaseName(name: string): string {
  return checkId("lease name", name);
}

function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 10 || ttlMs > 86_400_000) {
    throw new ValidationError(
      "ttlMs",
      `${ttlMs} is not a whole number of milliseconds in 10-86400000`,
    );
  }
}

/**
 * Acquires a lease once. Throws {@link LeaseHeldError} if someone else holds
 * it. Durable: with `MN_REDIS_WAIT_REPLICAS` > 0 the grant is confirmed on
 * replicas before the token is returned. Retrying after a lost reply is safe:
 * the same holder gets its own grant back, extended by the full `ttlMs`.
 *
 * @example
 * ```ts
 * import { acquireLease, jobLeaseName, parseConfig, StateStore } from "@mirror-neuron/redis-ha";
 * await using store = await StateStore.connect(parseConfig((name) => Deno.env.get(name)));
 * const job = await store.jobs.create(`job-${crypto.randomUUID()}`, { task: "index" });
 * await using lease = await acquireLease(store, jobLeaseName(job.id), {
 *   holder: `node-1:${crypto.randomUUID()}`,
 *   ttlMs: 10_000,
 *   keepAlive: {},
 * });
 * await store.jobs.update(job.id, { expectedVersion: job.version, status: "running", fence: lease });
 * ```
 */
export async function acquireLease(
  context: StateStore,
  name: string,
  options: AcquireLeaseOptions,
): Promise<Lease> {
  checkLeaseName(name);
  checkHolder(options.holder);
  checkTtl(options.ttlMs);
  // Check keep-alive timing before the grant, so a bad option never leaves a lease behind.
  if (options.keepAlive !== undefined) keepAliveTiming(options.ttlMs, options.keepAlive);
  const clock = options.clock ?? SYSTEM_CLOCK;
  const sentAt = clock.now();
  const reply = await runScript(
    context.client,
    ACQUIRE,
    [context.keys.lease(name), context.keys.fence(name)],
    (primary) => [options.holder, options.ttlMs, primary.configEpoch ?? 0],
    { durable: true, idempotent: true, signal: options.signal },
  ).catch((e) => {
    throw mapFenceError(mapScriptError(e, { what: `lease "${name}"` }), name);
  });
  const [granted, token, ttl, holder] = reply as RespReply[];
  if (replyToNumber(granted) !== 1) {
    throw new LeaseHeldError(
      name,
      replyToString(holder) ?? "",
      replyToNumber(ttl),
      replyToNumber(token),
    );
  }
  return Lease[GRANT_LEASE](context, {
    lease: name,
    holder: options.holder,
    token: Number(replyToString(token)),
    ttlMs: options.ttlMs,
    keepAlive: options.keepAlive,
    acquiredSentAt: sentAt,
    clock,
  });
}

/** Tries {@link acquireLease} every `retryPeriodMs` until it succeeds or `signal` aborts. */
export async function campaign(
  context: StateStore,
  name: string,
  options: CampaignOptions,
): Promise<Lease> {
  const period = options.retryPeriodMs ?? Math.max(10, Math.floor(options.ttlMs / 4));
  while (true) {
    options.signal?.throwIfAborted();
    try {
      return await acquireLease(context, name, options);
    } catch (error) {
      if (!(error instanceof LeaseHeldError)) throw error;
    }
    await (options.clock ?? SYSTEM_CLOCK).sleep(period, options.signal);
  }
}

/** Reads who holds a lease, or `null` when nobody does. */
export async function observeLease(
  context: StateStore,
  name: string,
  options: StateReadOptions = {},
): Promise<LeaseState | null> {
  checkLeaseName(name);
  const { reply } = await readWith(
    context.client,
    (send) => OBSERVE.run(send, [context.keys.lease(name)], []),
    readOptions(options),
  ).catch((e) => {
    throw mapScriptError(e, { what: `lease "${name}"` });
  });
  const parts = reply as RespReply[];
  if (parts.length === 0) return null;
  return {
    lease: name,
    holder: replyToString(parts[0]) ?? "",
    token: Number(replyToString(parts[1])),
    acquiredAt: Number(replyToString(parts[2])),
    ttlMs: replyToNumber(parts[3]),
  };
}

function mapFenceError(error: unknown, name: string): unknown {
  if (error instanceof ReplyError && error.prefix === "MNFENCE") {
    return new LeaseLostError(
      name,
      `its fencing token space is exhausted (${error.reply}); use a new lease name`,
    );
  }
  return error;
}
