/**
 * The errors of the state layer a caller may handle: bad input, a missing
 * or existing record, a version conflict, a refused transition, fencing and
 * leases, a corrupt bundle, a key of the wrong type. Each extends
 * {@link RedisHaError} with a stable `code`.
 *
 * @module
 */

import { RedisHaError } from "./errors.ts";

/** Invalid input to a state-store call (id, payload, option). Nothing was written. */
export class ValidationError extends RedisHaError {
  /** Error class name. */
  override readonly name = "ValidationError";
  /** The argument or field at fault. */
  readonly field: string;

  /** Creates the error. */
  constructor(field: string, message: string) {
    super("VALIDATION", `Invalid ${field}: ${message}`);
    this.field = field;
  }
}

/** A record does not exist. */
export class NotFoundError extends RedisHaError {
  /** Error class name. */
  override readonly name = "NotFoundError";
  /** What was looked up, e.g. `job "42"`. */
  readonly what: string;

  /** Creates the error. */
  constructor(what: string, hint = "check the id and MN_REDIS_NAMESPACE") {
    super("NOT_FOUND", `No ${what} in this namespace; ${hint}`);
    this.what = what;
  }
}

/** A record already exists (and was not created by this same request). */
export class AlreadyExistsError extends RedisHaError {
  /** Error class name. */
  override readonly name = "AlreadyExistsError";

  /** Creates the error. */
  constructor(what: string) {
    super("ALREADY_EXISTS", `${what} already exists; pick another id or read the existing one`);
  }
}

/** An optimistic-concurrency update presented a stale version. */
export class VersionConflictError extends RedisHaError {
  /** Error class name. */
  override readonly name = "VersionConflictError";
  /** The version the caller expected. */
  readonly expected: number;
  /** The version stored. */
  readonly actual: number;

  /** Creates the error. */
  constructor(what: string, expected: number, actual: number) {
    super(
      "VERSION_CONFLICT",
      `Version conflict on ${what}: expected version ${expected}, stored version is ${actual}; ` +
        "re-read it and apply the change again",
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** A state change that is not allowed, e.g. leaving a terminal job status. */
export class InvalidTransitionError extends RedisHaError {
  /** Error class name. */
  override readonly name = "InvalidTransitionError";
  /** Current state. */
  readonly from: string;
  /** Requested state. */
  readonly to: string;

  /** Creates the error. */
  constructor(what: string, from: string, to: string) {
    super(
      "INVALID_TRANSITION",
      `Cannot move ${what} from "${from}" to "${to}": "${from}" is terminal`,
    );
    this.from = from;
    this.to = to;
  }
}

/** A write presented a fencing token that is no longer the lease's current one. */
export class FencedError extends RedisHaError {
  /** Error class name. */
  override readonly name = "FencedError";
  /** The lease's current token, or null when nobody holds it. */
  readonly expected: number | null;
  /** The token the writer presented. */
  readonly presented: number;
  /** The lease name. */
  readonly lease: string;

  /** Creates the error. */
  constructor(lease: string, expected: number | null, presented: number) {
    super(
      "FENCED",
      `Write rejected by lease "${lease}": presented fencing token ${presented}, current token is ` +
        `${expected ?? "none (lease not held)"}; this writer lost the lease and must stop writing`,
    );
    this.lease = lease;
    this.expected = expected;
    this.presented = presented;
  }
}

/** The lease is held by someone else. */
export class LeaseHeldError extends RedisHaError {
  /** Error class name. */
  override readonly name = "LeaseHeldError";
  /** The lease name (as on `FencedError` and `LeaseLostError`). */
  readonly lease: string;
  /** The current holder. */
  readonly holder: string;
  /** The current holder's fencing token. */
  readonly token: number;
  /** Milliseconds until it expires unless renewed. */
  readonly ttlMs: number;

  /** Creates the error. */
  constructor(lease: string, holder: string, ttlMs: number, token: number) {
    super(
      "LEASE_HELD",
      `Lease "${lease}" is held by "${holder}" (token ${token}) for another ${ttlMs}ms`,
    );
    this.lease = lease;
    this.holder = holder;
    this.token = token;
    this.ttlMs = ttlMs;
  }
}

/** The lease was lost (expired, released by failover, or taken over). */
export class LeaseLostError extends RedisHaError {
  /** Error class name. */
  override readonly name = "LeaseLostError";
  /** The lease name. */
  readonly lease: string;

  /** Creates the error. */
  constructor(lease: string, reason: string) {
    super("LEASE_LOST", `Lease "${lease}" was lost: ${reason}; stop acting as its holder`);
    this.lease = lease;
  }
}

/** A stored bundle failed its integrity check. It is never returned. */
export class CorruptBundleError extends RedisHaError {
  /** Error class name. */
  override readonly name = "CorruptBundleError";

  /** Creates the error. */
  constructor(bundle: string, detail: string) {
    super("CORRUPT", `Bundle "${bundle}" is corrupt or partial: ${detail}; store it again`);
  }
}

/** A key holds a value of another type than the schema expects (left by something else). */
export class KeyTypeError extends RedisHaError {
  /** Error class name. */
  override readonly name = "KeyTypeError";
  /** The key. */
  readonly key: string;

  /** Creates the error. */
  constructor(key: string, expected: string, found: string) {
    super(
      "KEY_TYPE",
      `Key "${key}" holds a ${found}, expected a ${expected}; something outside mn-redis-ha wrote ` +
        "it. Nothing was written; use another MN_REDIS_NAMESPACE or remove the key",
    );
    this.key = key;
  }
}
