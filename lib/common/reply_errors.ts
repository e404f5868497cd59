/**
 * Error replies that say more than "this command failed": a node that
 * refuses a user ({@link AclDeniedError}), a node out of memory
 * ({@link OutOfMemoryError}) and a node that cannot persist
 * ({@link PersistenceError}, both a {@link WriteRefusedError}). Each is still a {@link ReplyError} (its
 * `prefix` is Redis's), names the node and says what to do. None is retried:
 * sending the same write elsewhere or again changes nothing until an
 * operator acts, and Redis refused it before anything was written.
 *
 * @module
 */

import { type RedisHaErrorCode, ReplyError } from "./errors.ts";

/**
 * An ACL user was refused a command (`NOPERM`): the user may not run it, or
 * not on that key or channel. The login itself worked, so this is not an
 * `AuthError`. Never retried: the ACL must allow it, or another user must
 * run it. Still a {@link ReplyError} (`prefix` is `NOPERM`).
 */
export class AclDeniedError extends ReplyError {
  /** Error class name. */
  override readonly name = "AclDeniedError";
  /** Stable code. */
  override readonly code: RedisHaErrorCode = "ACL_DENIED";
  /** The node that refused, without credentials. */
  readonly endpoint: string;
  /** The refused command's name, upper case (e.g. `FLUSHALL`, `EVALSHA`). */
  readonly command: string;
  /** The ACL user, when one was configured (otherwise the `default` user). */
  readonly user: string | undefined;

  /**
   * Creates the error from the `NOPERM` reply and what was sent. `subject`
   * names what the command touched (its first argument, e.g. a key), when
   * it has one.
   */
  constructor(
    reply: string,
    init: {
      endpoint: string;
      command: string;
      subject?: string | undefined;
      user?: string | undefined;
    },
  ) {
    super(reply);
    this.endpoint = init.endpoint;
    this.command = init.command;
    this.user = init.user;
    const who = init.user === undefined ? "the default user" : `user "${init.user}"`;
    const what = init.subject === undefined ? init.command : `${init.command} ${init.subject}`;
    const keyDenied = /\bkeys?\b/i.test(reply);
    const channelDenied = /\bchannels?\b/i.test(reply);
    this.message = `Permission denied: ${init.endpoint} refused ${what} for ${who} (${reply}); ` +
      (keyDenied
        ? "the user's ACL does not cover that key: a runtime user (join --acl) may use only keys " +
          "under its MN_REDIS_NAMESPACE, so check MN_REDIS_NAMESPACE"
        : channelDenied
        ? "the user's ACL does not cover that channel"
        : `the user's ACL does not allow ${init.command}: run it as a user that may (e.g. the ` +
          "administrator), or grant it in the ACL") +
      "; the login itself worked (this is not a password problem)";
  }
}

/**
 * A node refused a write before running it, for a state of the node itself
 * (out of memory, unable to persist): nothing of the write was written. The
 * common base of {@link OutOfMemoryError} and {@link PersistenceError}.
 * Never retried: the same write is refused until an operator acts.
 */
export abstract class WriteRefusedError extends ReplyError {
  /** The node that refused. */
  readonly endpoint: string;
  /** The refused command's name, upper case. */
  readonly command: string;

  /** Creates the error from the reply, the node and the command. */
  constructor(reply: string, init: { endpoint: string; command: string }) {
    super(reply);
    this.endpoint = init.endpoint;
    this.command = init.command;
  }
}

/**
 * The primary is at its `maxmemory` with a policy that evicts nothing
 * (`OOM command not allowed when used memory > 'maxmemory'`): it refused
 * the write before running it, so nothing of it was written (a state
 * operation's script is refused whole, never half run). Reads still work;
 * writes work again once memory is freed (keys deleted or expired, or
 * `maxmemory` raised). Never retried.
 */
export class OutOfMemoryError extends WriteRefusedError {
  /** Error class name. */
  override readonly name = "OutOfMemoryError";
  /** Stable code. */
  override readonly code: RedisHaErrorCode = "OOM";

  /** Creates the error from the `OOM` reply, the node and the command. */
  constructor(reply: string, init: { endpoint: string; command: string }) {
    super(reply, init);
    this.message = `Out of memory: ${init.endpoint} refused ${init.command} (${reply}); ` +
      "nothing of it was written. It is at its maxmemory and evicts nothing: free memory " +
      "(delete or expire keys) or raise maxmemory; writes work again once used memory is below it";
  }
}

/**
 * The primary cannot persist and refuses writes until it can (`MISCONF`:
 * an RDB save or an AOF write failed, typically a full disk). It refused
 * the write before running it: nothing of it was written. Such a node also
 * refuses `PING`, so Sentinel takes it for down and fails it over after
 * `down-after-milliseconds`; the client treats the refusals like a silence
 * (it confirms the node's next acknowledgements with the sentinels). Writes
 * resume on the new primary, or on this one once it can write its files.
 * Never retried.
 */
export class PersistenceError extends WriteRefusedError {
  /** Error class name. */
  override readonly name = "PersistenceError";
  /** Stable code. */
  override readonly code: RedisHaErrorCode = "PERSISTENCE";

  /** Creates the error from the `MISCONF` reply, the node and the command. */
  constructor(reply: string, init: { endpoint: string; command: string }) {
    super(reply, init);
    const aof = /\bAOF\b/.test(reply);
    this.message = `Cannot persist: ${init.endpoint} refused ${init.command} (${reply}); ` +
      `nothing of it was written. Its ${aof ? "append-only file" : "RDB snapshot"} could not ` +
      "be written (a full disk, or a data directory it may not write): give its data " +
      "directory room, and writes work again once Redis has written it";
  }
}
