/**
 * Fencing tokens: 53-bit integers that stay strictly increasing per lease
 * across Sentinel failovers, even when a failover lost the old primary's
 * last, unreplicated grants. See `docs/fencing.md`.
 *
 * Layout, most significant first:
 * - `epoch` (17 bits): the Sentinel `config-epoch` of the primary that
 *   granted it. Every failover raises it, so every grant on a newer primary
 *   beats every grant on an older one, replicated or not.
 * - `bump` (12 bits): raised when the primary's replication id changed
 *   without a new Sentinel epoch (single mode, manual REPLICAOF, restart).
 * - `counter` (24 bits): raised on every grant.
 *
 * @module
 */

/** Bits of each part. */
export const FENCE_BITS: {
  readonly epoch: number;
  readonly bump: number;
  readonly counter: number;
} = {
  epoch: 17,
  bump: 12,
  counter: 24,
};

/** A token's parts. */
export interface FenceParts {
  /** Sentinel config-epoch when granted. */
  readonly epoch: number;
  /** Timeline changes seen within that epoch. */
  readonly bump: number;
  /** Grants within that epoch and bump. */
  readonly counter: number;
}

const COUNTER_SPAN = 2 ** FENCE_BITS.counter;
const BUMP_SPAN = 2 ** FENCE_BITS.bump;
const EPOCH_SPAN = 2 ** FENCE_BITS.epoch;

/** Composes a token from its parts; throws `RangeError` if a part does not fit. */
export function composeToken(parts: FenceParts): number {
  for (
    const [name, value, span] of [
      ["epoch", parts.epoch, EPOCH_SPAN],
      ["bump", parts.bump, BUMP_SPAN],
      ["counter", parts.counter, COUNTER_SPAN],
    ] as const
  ) {
    if (!Number.isInteger(value) || value < 0 || value >= span) {
      throw new RangeError(`fencing ${name} ${value} is outside 0-${span - 1}`);
    }
  }
  return (parts.epoch * BUMP_SPAN + parts.bump) * COUNTER_SPAN + parts.counter;
}

/** Splits a token into its parts. */
export function decomposeToken(token: number): FenceParts {
  if (!Number.isSafeInteger(token) || token < 0) {
    throw new RangeError(`fencing token ${token} is not a non-negative safe integer`);
  }
  const counter = token % COUNTER_SPAN;
  const rest = (token - counter) / COUNTER_SPAN;
  const bump = rest % BUMP_SPAN;
  return { epoch: (rest - bump) / BUMP_SPAN, bump, counter };
}

/** What the grant script knows when it issues a token. */
export interface FenceState {
  /** Stored floor, or undefined before the first grant. */
  readonly stored: (FenceParts & { readonly replid: string }) | undefined;
  /** The primary's current `master_replid`. */
  readonly replid: string;
  /** The Sentinel config-epoch of the primary, as the client resolved it (0 in single mode). */
  readonly epochHint: number;
}

/**
 * The next token's parts: the same rule the grant script runs in Lua
 * ({@link LUA_NEXT_TOKEN}), kept here so it is unit-tested without Redis.
 */
export function nextTokenParts(state: FenceState): FenceParts {
  const stored = state.stored;
  if (stored === undefined) return { epoch: state.epochHint, bump: 0, counter: 0 };
  if (state.epochHint > stored.epoch) return { epoch: state.epochHint, bump: 0, counter: 0 };
  if (stored.replid !== state.replid) {
    return { epoch: stored.epoch, bump: stored.bump + 1, counter: 0 };
  }
  if (stored.counter + 1 >= COUNTER_SPAN) {
    return { epoch: stored.epoch, bump: stored.bump + 1, counter: 0 };
  }
  return { epoch: stored.epoch, bump: stored.bump, counter: stored.counter + 1 };
}

/**
 * Lua: `next_token(fence_key, epoch_hint)` computes and stores the next
 * token exactly like {@link nextTokenParts}; returns it or an `MNFENCE`
 * error when the parts are exhausted.
 */
export const LUA_NEXT_TOKEN = `
local function next_token(fence_key, epoch_hint)
  local info = redis.call('INFO', 'replication')
  local replid = string.match(info, 'master_replid:(%x+)') or ''
  local f = redis.call('HMGET', fence_key, 'epoch', 'bump', 'counter', 'replid')
  local epoch, bump, counter
  if f[1] == false then
    epoch, bump, counter = epoch_hint, 0, 0
  else
    epoch, bump, counter = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
    if epoch_hint > epoch then
      epoch, bump, counter = epoch_hint, 0, 0
    elseif f[4] ~= replid then
      bump, counter = bump + 1, 0
    elseif counter + 1 >= ${COUNTER_SPAN} then
      bump, counter = bump + 1, 0
    else
      counter = counter + 1
    end
  end
  if bump >= ${BUMP_SPAN} or epoch >= ${EPOCH_SPAN} then
    return nil, redis.error_reply('MNFENCE exhausted ' .. epoch .. ' ' .. bump)
  end
  redis.call('HSET', fence_key, 'epoch', epoch, 'bump', bump, 'counter', counter, 'replid', replid)
  return (epoch * ${BUMP_SPAN} + bump) * ${COUNTER_SPAN} + counter, nil
end
`;
