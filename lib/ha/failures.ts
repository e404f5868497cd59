/**
 * Which failures are worth a reconnect and a retry, which must surface, and
 * how each is counted in the client's metrics.
 *
 * @module
 */

import {
  AbortedError,
  AuthError,
  ConnectionError,
  NoSentinelReachableError,
  OutcomeUnknownError,
  ReplyError,
  RoleMismatchError,
  WaitError,
} from "../common/errors.ts";
import type { WriteOutcome } from "./client_metrics.ts";

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
 * import { classifyFailure } from "./failures.ts";
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

/** The `category` label of a failed attempt. */
export function errorCategory(error: unknown): string {
  if (error instanceof ConnectionError) return "connection";
  if (error instanceof WaitError) return "wait";
  if (error instanceof AbortedError) return "aborted";
  if (error instanceof ReplyError) {
    if (error.prefix === "MNFENCED" || error.prefix === "MNFENCE") return "fenced";
    if (error.prefix.startsWith("MN")) return "state";
    return error.prefix.toLowerCase();
  }
  return "other";
}

/**
 * Whether a failed attempt says the primary could not serve it (connection
 * lost, not a primary, WAIT short, retries gone) rather than that the
 * command itself was refused (fencing, ACL, a wrong type) or the caller
 * gave up.
 */
export function isUnavailability(error: unknown): boolean {
  if (error instanceof AbortedError) return false;
  if (error instanceof ReplyError) return RETRYABLE_REPLY_PREFIXES.has(error.prefix);
  return true;
}

/** What became of a durable write that threw `error`. */
export function writeOutcome(error: unknown): WriteOutcome {
  if (error instanceof WaitError) {
    return error.failover === undefined ? "under_replicated" : "indeterminate";
  }
  if (error instanceof OutcomeUnknownError) return "indeterminate";
  if (error instanceof AbortedError) return error.mayHaveApplied ? "indeterminate" : "failed";
  return "failed";
}
