/**
 * Shared Lua snippets and the mapping of their error replies to typed errors.
 * Scripts report domain failures as error replies with an `MN…` prefix, so a
 * failed check never writes anything.
 */

import { ReplyError } from "../common/errors.ts";
import {
  AlreadyExistsError,
  CorruptBundleError,
  FencedError,
  InvalidTransitionError,
  KeyTypeError,
  NotFoundError,
  VersionConflictError,
} from "../common/state_errors.ts";

/**
 * `expect_type(key, type)`: fails with `MNKEYTYPE` unless the key is missing
 * or of that type (a `TYPE` per key; the cold-path scripts use it). Fenced
 * writes use {@link LUA_CHECKED}'s `fenced`.
 */
export const LUA_PRELUDE = `
local function expect_type(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then
    return redis.error_reply('MNKEYTYPE ' .. key .. ' ' .. want .. ' ' .. t)
  end
  return nil
end
`;

/**
 * Helpers for scripts that check key types only when a command fails (no
 * `TYPE` per key on the way to a write). Run the first command on each key
 * with `redis.pcall` and pass its result through `failed(result, key, want)`:
 * it returns nil for a result, `MNKEYTYPE` (naming the key and the type it
 * holds) for `WRONGTYPE`, and any other error reply as it is. As long as
 * every key is touched by `pcall` before the script's first write, a
 * failed check has written nothing. `fenced(lease_key, token)` is the
 * fencing check on that basis.
 */
export const LUA_CHECKED = `
local function failed(result, key, want)
  if type(result) ~= 'table' or not result.err then return nil end
  if string.sub(result.err, 1, 9) == 'WRONGTYPE' then
    return redis.error_reply('MNKEYTYPE ' .. key .. ' ' .. want .. ' ' .. redis.call('TYPE', key).ok)
  end
  return result
end
local function fenced(lease_key, token)
  if token == nil or token == '' then return nil end
  local current = redis.pcall('HGET', lease_key, 'token')
  local err = failed(current, lease_key, 'hash')
  if err then return err end
  if current ~= token then
    return redis.error_reply('MNFENCED ' .. (current or '-') .. ' ' .. token)
  end
  return nil
end
`;

/** Context for {@link mapScriptError}: what the record is, and the lease name for fencing. */
export interface ScriptErrorContext {
  /** E.g. `job "42"`. */
  what: string;
  /** The lease whose token fenced the write, if any. */
  lease?: string | undefined;
}

/** Turns an `MN…` script error reply into its typed error; other errors pass through. */
export function mapScriptError(error: unknown, context: ScriptErrorContext): unknown {
  if (!(error instanceof ReplyError)) return error;
  const parts = error.reply.split(" ");
  switch (error.prefix) {
    case "MNKEYTYPE":
      return new KeyTypeError(parts[1]!, parts[2]!, parts[3]!);
    case "MNFENCED":
      return new FencedError(
        context.lease ?? "?",
        parts[1] === "-" ? null : Number(parts[1]),
        Number(parts[2]),
      );
    case "MNCONFLICT":
      return new VersionConflictError(context.what, Number(parts[1]), Number(parts[2]));
    case "MNTRANSITION":
      return new InvalidTransitionError(context.what, parts[1]!, parts[2]!);
    case "MNNOTFOUND":
      return new NotFoundError(context.what);
    case "MNEXISTS":
      return new AlreadyExistsError(context.what);
    case "MNPARTIAL":
      return new CorruptBundleError(
        context.what,
        `chunk ${parts[1]} was lost before the commit; store it again`,
      );
    default:
      return error;
  }
}

/** Maps a `WRONGTYPE` reply of a plain command on `key` to `KeyTypeError`. */
export function mapWrongType(error: unknown, key: string, expected: string): unknown {
  if (error instanceof ReplyError && error.prefix === "WRONGTYPE") {
    return new KeyTypeError(key, expected, "value of another type");
  }
  return error;
}
