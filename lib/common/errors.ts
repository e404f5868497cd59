/**
 * Typed errors a caller may handle. Every class extends {@link RedisHaError}
 * and carries a stable `code` plus the facts needed to react.
 *
 * @module
 */

/** Stable machine-readable error codes. */
export type RedisHaErrorCode =
  | "CONFIG"
  | "CONNECTION"
  | "REPLY"
  | "AUTH"
  | "OUTCOME_UNKNOWN"
  | "RETRIES_EXHAUSTED"
  | "NO_SENTINEL_REACHABLE"
  | "MASTER_UNKNOWN"
  | "ROLE_MISMATCH"
  | "WAIT"
  | "PROTOCOL"
  | "TLS"
  | "USAGE"
  | "VALIDATION"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "VERSION_CONFLICT"
  | "INVALID_TRANSITION"
  | "FENCED"
  | "LEASE_HELD"
  | "LEASE_LOST"
  | "CORRUPT"
  | "KEY_TYPE"
  | "ABORTED"
  | "NOT_PRIMARY"
  | "NOT_PERMITTED"
  | "ACL_DENIED"
  | "OOM"
  | "PERSISTENCE"
  | "NO_REPLICA";

/** Base class of every error this library throws on purpose. */
export class RedisHaError extends Error {
  /** Stable code, for programs. */
  readonly code: RedisHaErrorCode;

  /** Creates an error with a code, a message and an optional cause. */
  constructor(code: RedisHaErrorCode, message: string, options?: { cause?: unknown | undefined }) {
    super(message, options);
    this.code = code;
  }

  /** Error class name. */
  override readonly name: string = "RedisHaError";
}

/** One problem found in the configuration, tied to the variable that holds it. */
export interface ConfigIssue {
  /** The variable (or option) name, e.g. `MN_REDIS_SENTINELS`. */
  readonly variable: string;
  /** What is wrong and what is expected. Secrets are already masked. */
  readonly message: string;
}

/** The configuration is invalid; `issues` lists every problem at once. */
export class ConfigError extends RedisHaError {
  /** Every problem found, one per variable. */
  readonly issues: readonly ConfigIssue[];
  /** Error class name. */
  override readonly name = "ConfigError";

  /** Creates the error from the list of issues. */
  constructor(issues: readonly ConfigIssue[]) {
    super(
      "CONFIG",
      `Invalid Redis configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  - ${i.variable}: ${i.message}`).join("\n"),
    );
    this.issues = issues;
  }
}

/** The command line is invalid. */
export class UsageError extends RedisHaError {
  /** Error class name. */
  override readonly name = "UsageError";

  /** Creates a usage error with a message naming the flag and what is expected. */
  constructor(message: string) {
    super("USAGE", message);
  }
}

/**
 * The connection to a Redis node or sentinel failed (refused, reset, closed,
 * timed out). `sendState` tells whether the command had been written: a
 * `"not-sent"` command is always safe to retry.
 */
export class ConnectionError extends RedisHaError {
  /** Error class name. */
  override readonly name = "ConnectionError";
  /** Where the connection went, without credentials. */
  readonly endpoint: string;
  /** Whether the failed command had been written to the socket. */
  readonly sendState: "not-sent" | "sent";

  /** Creates a connection error. */
  constructor(
    message: string,
    init: { endpoint: string; sendState?: "not-sent" | "sent"; cause?: unknown | undefined },
  ) {
    super("CONNECTION", message, { cause: init.cause });
    this.endpoint = init.endpoint;
    this.sendState = init.sendState ?? "not-sent";
  }
}

/** An error reply from Redis, e.g. `READONLY …` or `WRONGTYPE …`. */
export class ReplyError extends RedisHaError {
  /** Error class name (a subclass's for `NOPERM`, `OOM` and `MISCONF`: see `reply_errors.ts`). */
  override readonly name: string = "ReplyError";
  /** The first word of the reply, e.g. `READONLY`, `ERR`, `WRONGTYPE`. */
  readonly prefix: string;
  /** The full error text as Redis sent it. */
  readonly reply: string;

  /** Creates the error from the raw error text. */
  constructor(reply: string) {
    super("REPLY", `Redis replied with an error: ${reply}`);
    this.reply = reply;
    const space = reply.indexOf(" ");
    this.prefix = space === -1 ? reply : reply.slice(0, space);
  }
}

/** Authentication was refused (`WRONGPASS`, `NOAUTH`). Never retried. */
export class AuthError extends RedisHaError {
  /** Error class name. */
  override readonly name = "AuthError";
  /** Where authentication failed, without credentials. */
  readonly endpoint: string;

  /** Creates an auth error; the message never holds the password. */
  constructor(message: string, init: { endpoint: string; cause?: unknown | undefined }) {
    super("AUTH", message, { cause: init.cause });
    this.endpoint = init.endpoint;
  }
}

/**
 * The process may not open a connection it needs: Deno's `--allow-net` (or
 * a compiled binary's baked-in permissions) does not include the address.
 * Typical after a failover, when the new primary is a node the permission
 * list left out. Never retried: the permissions must change.
 */
export class NotPermittedError extends RedisHaError {
  /** Error class name. */
  override readonly name = "NotPermittedError";
  /** The address that was refused, `host:port`. */
  readonly endpoint: string;
  /** The Deno flag that would allow it, e.g. `--allow-net=10.0.0.3:6379`. */
  readonly flag: string;

  /** Creates the error; `role` says what the address is (e.g. "the primary the sentinels name"). */
  constructor(endpoint: string, init: { role?: string | undefined; cause?: unknown } = {}) {
    const flag = `--allow-net=${endpoint}`;
    super(
      "NOT_PERMITTED",
      `Not permitted to connect to ${endpoint}${
        init.role === undefined ? "" : ` (${init.role})`
      }: this process's network permission does not include it; grant it (${flag}, added to ` +
        "the list) — grant every Redis node that can become primary and every sentinel, not only " +
        "today's primary",
      { cause: init.cause },
    );
    this.endpoint = endpoint;
    this.flag = flag;
  }
}

/**
 * A non-idempotent command was written but the connection failed before its
 * reply: it may or may not have been applied, so it was not resent.
 */
export class OutcomeUnknownError extends RedisHaError {
  /** Error class name. */
  override readonly name = "OutcomeUnknownError";
  /** The node the command was sent to. */
  readonly endpoint: string;

  /**
   * Creates the error. `why` replaces the default explanation (a lost
   * connection after the send), e.g. for a retry that gave up after an
   * earlier attempt may have been applied.
   */
  constructor(endpoint: string, cause: unknown, why?: string) {
    super(
      "OUTCOME_UNKNOWN",
      `Command outcome unknown: ${
        why ??
          `the connection to ${endpoint} failed after the command was sent; ` +
            "it was not retried because it is not marked idempotent"
      }. Read back the state before retrying`,
      { cause },
    );
    this.endpoint = endpoint;
  }
}

/** Reconnectable failures went on for all configured attempts. */
export class RetriesExhaustedError extends RedisHaError {
  /** Error class name. */
  override readonly name = "RetriesExhaustedError";
  /** How many attempts were made. */
  readonly attempts: number;
  /** The last primary tried, if any was resolved. */
  readonly lastPrimary: string | undefined;

  /** Creates the error. */
  constructor(
    init: {
      attempts: number;
      lastPrimary?: string | undefined;
      elapsedMs: number;
      cause: unknown;
      /** What ended the retries, when not the attempts: e.g. a deadline option. */
      limit?: string | undefined;
    },
  ) {
    const last = init.cause instanceof Error ? init.cause.message : String(init.cause);
    super(
      "RETRIES_EXHAUSTED",
      `Redis unavailable after ${init.attempts} attempts over ${Math.round(init.elapsedMs)}ms ` +
        `(last primary tried: ${init.lastPrimary ?? "none resolved"}); last error: ${last}; ` +
        `check that Redis and Sentinel are up, or raise ${
          init.limit ?? "MN_REDIS_RECONNECT_ATTEMPTS"
        }`,
      { cause: init.cause },
    );
    this.attempts = init.attempts;
    this.lastPrimary = init.lastPrimary;
  }
}

/** One sentinel's failure, as reported inside {@link NoSentinelReachableError}. */
export interface SentinelFailure {
  /** The sentinel, as `host:port`. */
  readonly endpoint: string;
  /** What went wrong there. */
  readonly error: string;
}

/** No listed sentinel answered. */
export class NoSentinelReachableError extends RedisHaError {
  /** Error class name. */
  override readonly name = "NoSentinelReachableError";
  /** Each sentinel and its last error. */
  readonly failures: readonly SentinelFailure[];
  /**
   * True when every sentinel refused for a reason a retry cannot fix (wrong
   * credentials, not a sentinel, TLS mismatch): the client fails at once.
   */
  readonly permanent: boolean;

  /** Creates the error. */
  constructor(
    failures: readonly SentinelFailure[],
    options: { permanent?: boolean | undefined } = {},
  ) {
    const permanent = options.permanent ?? false;
    super(
      "NO_SENTINEL_REACHABLE",
      permanent
        ? `No listed sentinel can be used: ${
          failures.map((f) => `${f.endpoint} (${f.error})`).join("; ")
        }; retrying cannot fix this`
        : `No sentinel reachable: ${
          failures.map((f) => `${f.endpoint} (${f.error})`).join("; ")
        }; ` +
          "check MN_REDIS_SENTINELS and that redis-sentinel runs there",
    );
    this.failures = failures;
    this.permanent = permanent;
  }
}

/** Sentinels answered but none monitors the configured master name. */
export class MasterUnknownError extends RedisHaError {
  /** Error class name. */
  override readonly name = "MasterUnknownError";
  /** The master name that was asked for. */
  readonly masterName: string;
  /** The sentinels that answered. */
  readonly answered: readonly string[];

  /** Creates the error. */
  constructor(masterName: string, answered: readonly string[]) {
    super(
      "MASTER_UNKNOWN",
      `Sentinels ${answered.join(", ")} answered but none monitors a master named ` +
        `"${masterName}"; check MN_REDIS_SENTINEL_MASTER or join the cluster first`,
    );
    this.masterName = masterName;
    this.answered = answered;
  }
}

/** The node reported as primary kept answering `ROLE` with something other than master. */
export class RoleMismatchError extends RedisHaError {
  /** Error class name. */
  override readonly name = "RoleMismatchError";
  /** The node that was expected to be primary. */
  readonly endpoint: string;
  /** The role it reported. */
  readonly role: string;

  /** Creates the error. */
  constructor(endpoint: string, role: string) {
    super(
      "ROLE_MISMATCH",
      `Node ${endpoint} was reported as primary but ROLE says "${role}"; ` +
        "a failover is probably in progress, retry shortly",
    );
    this.endpoint = endpoint;
    this.role = role;
  }
}

/**
 * A durable write reached the primary but `WAIT` confirmed fewer replicas
 * than required. The write is on the primary, not confirmed on replicas.
 */
export class WaitError extends RedisHaError {
  /** Error class name. */
  override readonly name = "WaitError";
  /** Replicas that acknowledged. */
  readonly acked: number;
  /** Replicas required (`MN_REDIS_WAIT_REPLICAS`). */
  readonly required: number;
  /** The WAIT timeout used. */
  readonly timeoutMs: number;
  /**
   * Set when the replicas did acknowledge but the write is still not
   * confirmed: the primary had gone silent long enough to be failed over,
   * and the sentinels then reported a failover of it, or could not be asked
   * (this says which). Replicas that still follow a replaced primary discard what
   * they acknowledged once Sentinel points them at the new one.
   */
  readonly failover: string | undefined;

  /**
   * Creates the error. A `cause` means `WAIT` itself failed after the write
   * was applied (e.g. the node was demoted, or the connection was lost);
   * `failover` means the acknowledgement cannot be trusted (see
   * {@link WaitError.failover}).
   */
  constructor(
    init: {
      acked: number;
      required: number;
      timeoutMs: number;
      cause?: unknown | undefined;
      failover?: string | undefined;
    },
  ) {
    const failed = init.cause === undefined
      ? ""
      : ` (WAIT failed: ${init.cause instanceof Error ? init.cause.message : String(init.cause)})`;
    super(
      "WAIT",
      init.failover === undefined
        ? `Cannot confirm write: ${init.acked} of ${init.required} replicas acknowledged within ` +
          `${init.timeoutMs}ms${failed}; the write reached the primary but is not confirmed on ` +
          "replicas and may be lost if that primary is replaced. Check replica lag or lower " +
          "MN_REDIS_WAIT_REPLICAS"
        : `Cannot confirm write: ${init.acked} of ${init.required} replicas acknowledged, but ` +
          `${init.failover}; the write may be lost when that failover completes. Read back ` +
          "the state before retrying",
      { cause: init.cause },
    );
    this.acked = init.acked;
    this.required = init.required;
    this.timeoutMs = init.timeoutMs;
    this.failover = init.failover;
  }
}

/** The TLS handshake failed (e.g. an untrusted certificate). Never retried. */
export class TlsError extends RedisHaError {
  /** Error class name. */
  override readonly name = "TlsError";
  /** Where the handshake failed. */
  readonly endpoint: string;

  /**
   * Creates the error. `message` replaces the default one (an untrusted
   * certificate) for the other TLS faults, e.g. TLS to a plain-TCP port.
   */
  constructor(endpoint: string, cause: unknown, message?: string) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      "TLS",
      message ??
        `TLS handshake with ${endpoint} failed: ${reason}; make the client trust the server's CA ` +
          "(DENO_CERT=/path/to/ca.pem for the CLI, or ClientOptions.tlsCaCerts) or check MN_REDIS_URL's scheme",
      { cause },
    );
    this.endpoint = endpoint;
  }
}

/** The peer sent bytes that are not valid RESP. */
export class ProtocolError extends RedisHaError {
  /** Error class name. */
  override readonly name = "ProtocolError";

  /** Creates the error. */
  constructor(message: string) {
    super("PROTOCOL", message);
  }
}

/**
 * An operation was aborted through its `signal` (or its deadline passed).
 * `mayHaveApplied` tells whether a write had already reached Redis: when
 * false, nothing was applied; when true, read back the state before retrying.
 */
export class AbortedError extends RedisHaError {
  /** Error class name. */
  override readonly name = "AbortedError";
  /** Whether the command had been written to Redis before the abort. */
  readonly mayHaveApplied: boolean;

  /** Creates the error; `reason` is the signal's reason. */
  constructor(init: { mayHaveApplied: boolean; reason: unknown; what?: string | undefined }) {
    const why = abortReasonText(init.reason);
    const what = init.what ?? "Redis command";
    super(
      "ABORTED",
      init.mayHaveApplied
        ? `${what} aborted (${why}) after it was sent; it may have been applied, so read back the state before retrying`
        : `${what} aborted (${why}) before it was sent; it was not applied`,
      { cause: init.reason },
    );
    this.mayHaveApplied = init.mayHaveApplied;
  }
}

/** What an abort reason says, for messages: a deadline, a signal, or the reason's text. */
export function abortReasonText(reason: unknown): string {
  if (reason instanceof DOMException && reason.name === "TimeoutError") return "deadline passed";
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? "aborted" : String(reason);
}

/**
 * Single mode (`MN_REDIS_URL`) points at a replica: writes are refused
 * there. Never retried: the configuration must name the primary.
 */
export class NotPrimaryError extends RedisHaError {
  /** Error class name. */
  override readonly name = "NotPrimaryError";
  /** The node written to. */
  readonly endpoint: string;
  /** The primary it replicates from, as `host:port`, when it said. */
  readonly primary: string | undefined;

  /** Creates the error. */
  constructor(endpoint: string, primary: string | undefined, cause?: unknown) {
    super(
      "NOT_PRIMARY",
      `${endpoint} is a replica${
        primary === undefined ? "" : ` of ${primary}`
      } and refuses writes; ` +
        `point MN_REDIS_URL at the primary${
          primary === undefined ? "" : ` (${primary})`
        } or use MN_REDIS_HA_MODE=sentinel so the primary is found for you`,
      { cause },
    );
    this.endpoint = endpoint;
    this.primary = primary;
  }
}
