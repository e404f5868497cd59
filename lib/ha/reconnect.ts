/**
 * Which failures are worth a reconnect and a retry, and which must surface.
 *
 * @module
 */

import {
  AuthError,
  ConnectionError,
  NoSentinelReachableError,
  ReplyError,
  RoleMismatchError,
} from "../common/errors.ts";

/** Reply prefixes that mean "not executed; the node is not a usable primary right now". */
export const RETRYABLE_REPLY_PREFIXES: ReadonlySet<string> = new Set([
  "READONLY",
  "LOADING",
  "MASTERDOWN",
  "TRYAGAIN",
  "NOREPLICAS",
]);

/**
 * Reply prefixes that mean the credentials are wrong or missing. (`NOPERM` is
 * not one: the login worked and the ACL refused a command, an
 * `AclDeniedError`.)
 */
export const AUTH_REPLY_PREFIXES: ReadonlySet<string> = new Set(["WRONGPASS", "NOAUTH"]);

/** What to do about a failed command. */
export type FailureAction =
  /** Re-resolve the primary, back off and try again. */
  | "retry"
  /** The command was written and may have run; it is not idempotent, so do not resend. */
  | "outcome-unknown"
  /** Surface the error as is. */
  | "fatal";

/**
 * Classifies a failure. `idempotent` says whether the caller allows a resend
 * of a command whose outcome is unknown.
 *
 * @example
 * ```ts
 * import { classifyFailure } from "./reconnect.ts";
 * import { ReplyError } from "../common/errors.ts";
 * const readonly = new ReplyError("READONLY You can't write against a read only replica.");
 * const action = classifyFailure(readonly, { idempotent: false });
 * if (action !== "retry") throw new Error(`expected "retry", got ${action}`);
 * ```
 */
export function classifyFailure(error: unknown, options: { idempotent: boolean }): FailureAction {
  if (error instanceof ConnectionError) {
    if (error.sendState === "not-sent" || options.idempotent) return "retry";
    return "outcome-unknown";
  }
  if (error instanceof ReplyError) {
    return RETRYABLE_REPLY_PREFIXES.has(error.prefix) ? "retry" : "fatal";
  }
  if (error instanceof NoSentinelReachableError) return error.permanent ? "fatal" : "retry";
  if (error instanceof RoleMismatchError) return "retry";
  if (error instanceof AuthError) return "fatal";
  return "fatal";
}

/** True when a reply error means the credentials were refused. */
export function isAuthReply(error: unknown): error is ReplyError {
  return error instanceof ReplyError && AUTH_REPLY_PREFIXES.has(error.prefix);
}
