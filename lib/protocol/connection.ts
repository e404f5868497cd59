/**
 * One pipelined RESP2 connection on `Deno.connect` / `Deno.connectTls`.
 *
 * Every command issued while others are in flight is written in the same
 * socket write (no per-command round trip). When the connection fails, each
 * pending command is rejected with a {@link ConnectionError} whose
 * `sendState` says whether it had been written: `"not-sent"` commands are
 * always safe to retry, `"sent"` ones have an unknown outcome.
 *
 * @module
 */

import {
  AbortedError,
  ConnectionError,
  type RedisHaError,
  ReplyError,
  TlsError,
} from "../common/errors.ts";
import { AclDeniedError, OutOfMemoryError, PersistenceError } from "../common/reply_errors.ts";
import { formatMs, quoteValue } from "../common/quote.ts";
import { type Endpoint, formatEndpoint } from "./endpoint.ts";
import { dial, type DialOptions, isTlsFailure, speaksTls } from "./dial.ts";
import { handshake, type HandshakeOptions } from "./handshake.ts";
import {
  bulkToStrings,
  encodeCommands,
  replyToString,
  type RespArg,
  RespReader,
  type RespReply,
} from "./resp.ts";

/** Options for {@link RedisConnection.connect}: the socket's and the handshake's. */
export interface ConnectOptions extends DialOptions, HandshakeOptions {}

/** Options for one command. */
export interface SendOptions {
  /** Reject if no reply arrives within this time. The connection stays open. */
  timeoutMs?: number | undefined;
  /**
   * Abandons the command: rejects with {@link AbortedError} at once. A
   * command not yet written is withdrawn (never applied); a written one keeps
   * its slot so later replies stay in order.
   */
  signal?: AbortSignal | undefined;
  /** Decode bulk replies (also inside arrays) as UTF-8 strings. @default {false} */
  strings?: boolean | undefined;
}

interface Pending {
  readonly args: readonly RespArg[];
  readonly resolve: (reply: RespReply) => void;
  readonly reject: (error: unknown) => void;
  sent: boolean;
  settled: boolean;
  strings: boolean;
  timer?: ReturnType<typeof setTimeout> | undefined;
  signal?: AbortSignal | undefined;
  onAbort?: (() => void) | undefined;
}

/** Handler for pub/sub messages on a subscribed connection. */
export type MessageHandler = (channel: string, message: string) => void;

/**
 * The socket read buffer starts small and doubles each time a read fills it,
 * up to 64 KiB: a sentinel or an idle node's connection keeps 4 KiB, a busy
 * one grows to the size that keeps reads few (hundreds of clients hold
 * several connections each).
 */
const READ_SIZE_MIN = 4 * 1024;
const READ_SIZE_MAX = 64 * 1024;
/** Commands per socket write at most. */
const MAX_BATCH_COMMANDS = 16;
/** Commands a flush hook sees at most at once (see {@link RedisConnection.setFlushHook}). */
const MAX_HOOK_COMMANDS = 1024;

/** A single pipelined connection to one Redis node or sentinel. */
export class RedisConnection implements AsyncDisposable {
  /** The peer. */
  readonly endpoint: Endpoint;
  readonly #conn: Deno.Conn;
  readonly #reader = new RespReader();
  #unsent: Pending[] = [];
  #inflight: Pending[] = [];
  #flushing = false;
  /** Commands written since the flush hook last saw them (see {@link RedisConnection.#flush}). */
  #sinceHook: (readonly RespArg[])[] = [];
  #flushScheduled = false;
  #closed = false;
  #closeError: unknown = undefined;
  #readLoop: Promise<void>;
  #onMessage: MessageHandler | undefined;
  readonly #closedListeners: Array<(error: unknown) => void> = [];
  #idleWaiters: Array<() => void> = [];
  #bytesRead = 0;
  #batchesWritten = 0;
  #flushHook: ((batch: readonly (readonly RespArg[])[]) => void) | undefined;
  #readHook: (() => void) | undefined;
  /** The ACL user it logged in as, for `NOPERM` messages. */
  #username: string | undefined;

  private constructor(endpoint: Endpoint, conn: Deno.Conn) {
    this.endpoint = endpoint;
    this.#conn = conn;
    this.#readLoop = this.#read();
  }

  /**
   * Opens a connection and runs the AUTH/SELECT/SETNAME handshake.
   *
   * @example
   * ```ts
   * import { RedisConnection } from "./connection.ts";
   * import { parseEndpoint } from "./endpoint.ts";
   * // A sentinel answers PING too: the first of MN_REDIS_SENTINELS, e.g. 127.0.0.1:26379.
   * const first = (Deno.env.get("MN_REDIS_SENTINELS") ?? "127.0.0.1:26379").split(",")[0]!;
   * const endpoint = parseEndpoint(first);
   * if (typeof endpoint === "string") throw new Error(endpoint);
   * await using conn = await RedisConnection.connect(endpoint);
   * console.log(await conn.send(["PING"], { strings: true })); // "PONG"
   * ```
   */
  static async connect(endpoint: Endpoint, options: ConnectOptions = {}): Promise<RedisConnection> {
    const where = formatEndpoint(endpoint);
    const timeoutMs = options.connectTimeoutMs ?? 2000;
    const started = performance.now();
    const left = (): number => Math.max(1, Math.round(timeoutMs - (performance.now() - started)));
    const tls = options.tls ?? false;
    const conn = await dial(endpoint, options);
    const connection = new RedisConnection(endpoint, conn);
    connection.#username = options.username;
    try {
      await handshake(
        (args) => connection.send(args, { timeoutMs: left(), signal: options.signal }),
        where,
        options,
      );
    } catch (error) {
      const silent = connection.#bytesRead === 0;
      await connection.close();
      if (silent && error instanceof ConnectionError && /^No reply/.test(error.message)) {
        throw new ConnectionError(
          `${where} accepted the connection but answered nothing within ${formatMs(timeoutMs)}; ` +
            "the process may be hung or paused (SIGSTOP)",
          { endpoint: where, cause: error },
        );
      }
      if (
        !tls && silent && error instanceof ConnectionError &&
        /closed by the server|reset/i.test(error.message) && await speaksTls(endpoint, options)
      ) {
        throw new TlsError(
          where,
          error,
          `${where} serves TLS only (it dropped a plain connection, a TLS handshake succeeded); ` +
            `use TLS on both sides or neither: check ${
              options.tlsVariable ?? "MN_REDIS_URL (rediss:// or redis://)"
            }`,
        );
      }
      throw error;
    }
    return connection;
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Commands written but not yet answered, plus those waiting to be written. */
  get pending(): number {
    return this.#unsent.length + this.#inflight.length;
  }

  /** Socket writes made so far: each carries every command queued since the previous one. */
  get batchesWritten(): number {
    return this.#batchesWritten;
  }

  /**
   * Sets a function called with the commands of each run of writes (a long
   * queue goes out in several socket writes) just before the last of them
   * is written (under a queue that never empties, every 1,024 commands);
   * commands it sends join that write, after the others.
   * Used by `GroupWait` to append the one `WAIT` covering them all.
   */
  setFlushHook(hook: (batch: readonly (readonly RespArg[])[]) => void): void {
    this.#flushHook = hook;
  }

  /**
   * Sets a function called each time bytes arrive from the server, before
   * the replies they complete are delivered. The HA client uses it to notice
   * a primary that went silent (paused, hung) and then answered again.
   */
  setReadHook(hook: () => void): void {
    this.#readHook = hook;
  }

  /** Calls `listener` once when the connection fails or closes. */
  onClose(listener: (error: unknown) => void): void {
    if (this.#closed) listener(this.#closeError);
    else this.#closedListeners.push(listener);
  }

  /** Resolves once no command is waiting for a reply (or the connection closed). */
  whenIdle(): Promise<void> {
    if (this.#closed || this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0 || (!this.#closed && this.pending > 0)) return;
    for (const waiter of this.#idleWaiters.splice(0)) waiter();
  }

  /**
   * Sends one command and resolves with its reply. An error reply rejects
   * with {@link ReplyError}; a connection failure rejects with
   * {@link ConnectionError} (see `sendState`). Arguments are encoded when
   * the batch is written, so do not mutate them until the promise settles.
   */
  send(args: readonly RespArg[], options: SendOptions = {}): Promise<RespReply> {
    if (this.#closed) {
      return Promise.reject(this.#failure("not-sent"));
    }
    if (options.signal?.aborted) {
      return Promise.reject(
        new AbortedError({ mayHaveApplied: false, reason: options.signal.reason }),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<RespReply>();
    const pending: Pending = {
      args,
      resolve,
      reject,
      sent: false,
      settled: false,
      strings: options.strings === true,
    };
    if (options.timeoutMs !== undefined) {
      const timeoutMs = options.timeoutMs;
      pending.timer = setTimeout(() => {
        this.#abandon(
          pending,
          new ConnectionError(
            `No reply from ${formatEndpoint(this.endpoint)} within ${formatMs(timeoutMs)}`,
            {
              endpoint: formatEndpoint(this.endpoint),
              sendState: pending.sent ? "sent" : "not-sent",
            },
          ),
        );
      }, timeoutMs);
    }
    if (options.signal !== undefined) {
      const signal = options.signal;
      pending.signal = signal;
      pending.onAbort = () =>
        this.#abandon(
          pending,
          new AbortedError({ mayHaveApplied: pending.sent, reason: signal.reason }),
        );
      signal.addEventListener("abort", pending.onAbort, { once: true });
    }
    this.#unsent.push(pending);
    this.#scheduleFlush();
    return promise;
  }

  /** Gives up on a command: an unsent one is withdrawn, a sent one keeps its slot so replies stay in order. */
  #abandon(pending: Pending, error: RedisHaError): void {
    if (pending.settled) return;
    this.#settle(pending);
    const index = this.#unsent.indexOf(pending);
    if (index !== -1) this.#unsent.splice(index, 1);
    pending.reject(error);
    this.#notifyIdle();
  }

  /** Marks a command settled and drops its timer and abort listener. */
  #settle(pending: Pending): void {
    pending.settled = true;
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if (pending.onAbort !== undefined) {
      pending.signal?.removeEventListener("abort", pending.onAbort);
    }
  }

  /**
   * Subscribes to channels. From then on the connection is in pub/sub mode:
   * use it only for more subscriptions. Messages go to `onMessage`.
   * `options` bound the wait for the confirmations.
   */
  async subscribe(
    channels: readonly string[],
    onMessage: MessageHandler,
    options: SendOptions = {},
  ): Promise<void> {
    this.#onMessage = onMessage;
    const results = await Promise.allSettled(
      channels.map((channel) => this.send(["SUBSCRIBE", channel], options)),
    );
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }

  /** Closes the connection; pending commands are rejected. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#fail(
        new ConnectionError(`Connection to ${formatEndpoint(this.endpoint)} closed by the client`, {
          endpoint: formatEndpoint(this.endpoint),
        }),
      );
    }
    await this.#readLoop;
  }

  /** Same as {@link RedisConnection.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#flushing) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#unsent.length > 0 && !this.#closed) {
        // A long queue goes out in several writes: the server starts on the first while the
        // rest are encoded, and its replies come back while it works on the next.
        const batch = this.#unsent.length <= MAX_BATCH_COMMANDS
          ? this.#unsent
          : this.#unsent.splice(0, MAX_BATCH_COMMANDS);
        if (batch === this.#unsent) this.#unsent = [];
        const commands = batch.map((p) => p.args);
        if (this.#flushHook !== undefined) {
          // The hook sees every command of this run of writes once, with the last of them (the
          // queue is empty): a group commit's one WAIT covers a long queue, however many socket
          // writes it takes. Commands the hook sends join that last batch, after the others.
          // Under a queue that never empties, every MAX_HOOK_COMMANDS at the latest: a WAIT
          // is never starved by writes behind it.
          for (const c of commands) this.#sinceHook.push(c);
          if (this.#unsent.length === 0 || this.#sinceHook.length >= MAX_HOOK_COMMANDS) {
            const seen = this.#sinceHook;
            this.#sinceHook = [];
            const queued = this.#unsent.length;
            this.#flushHook(seen);
            for (const added of this.#unsent.splice(queued)) {
              batch.push(added);
              commands.push(added.args);
            }
          }
        }
        const out = encodeCommands(commands);
        for (const p of batch) {
          p.sent = true;
          this.#inflight.push(p);
        }
        this.#batchesWritten++;
        let written = 0;
        while (written < out.length) {
          written += await this.#conn.write(out.subarray(written));
        }
      }
    } catch (error) {
      this.#fail(this.#wrap(error));
    } finally {
      this.#flushing = false;
    }
  }

  async #read(): Promise<void> {
    let buf = new Uint8Array(READ_SIZE_MIN);
    try {
      while (true) {
        // A large bulk reply is read straight into its own buffer: no copy in JavaScript.
        const target = this.#reader.bulkTarget();
        const n = await this.#conn.read(target ?? buf);
        if (n === null) {
          this.#fail(
            new ConnectionError(
              `Connection to ${formatEndpoint(this.endpoint)} closed by the server`,
              {
                endpoint: formatEndpoint(this.endpoint),
              },
            ),
          );
          return;
        }
        this.#bytesRead += n;
        this.#readHook?.();
        if (target === undefined) this.#reader.push(buf.subarray(0, n));
        else this.#reader.advance(n);
        if (target === undefined && n === buf.length && buf.length < READ_SIZE_MAX) {
          buf = new Uint8Array(buf.length * 2);
        }
        let reply: RespReply | undefined;
        while ((reply = this.#reader.next()) !== undefined) this.#dispatch(reply);
      }
    } catch (error) {
      if (!this.#closed) this.#fail(this.#wrap(error));
    }
  }

  #dispatch(reply: RespReply): void {
    if (this.#onMessage !== undefined && Array.isArray(reply) && reply.length >= 3) {
      const kind = replyToString(reply[0]);
      if (kind === "message") {
        this.#onMessage(replyToString(reply[1]) ?? "", replyToString(reply[2]) ?? "");
        return;
      }
      if (kind === "pmessage" && reply.length >= 4) {
        this.#onMessage(replyToString(reply[2]) ?? "", replyToString(reply[3]) ?? "");
        return;
      }
    }
    const pending = this.#inflight.shift();
    if (pending === undefined) return; // e.g. an unsolicited reply; nothing waits for it
    if (pending.settled) {
      this.#notifyIdle();
      return;
    }
    this.#settle(pending);
    if (reply instanceof ReplyError) pending.reject(this.#replyError(reply, pending.args));
    else pending.resolve(pending.strings ? bulkToStrings(reply) : reply);
    this.#notifyIdle();
  }

  /**
   * A reply that says more than "this command failed" becomes its own
   * error, naming the node and the command: `NOPERM` an
   * {@link AclDeniedError}, `OOM` an {@link OutOfMemoryError}, `MISCONF` a
   * {@link PersistenceError}. Others stay as they are.
   */
  #replyError(reply: ReplyError, args: readonly RespArg[]): ReplyError {
    const name = typeof args[0] === "string" ? args[0].toUpperCase() : "COMMAND";
    const endpoint = formatEndpoint(this.endpoint);
    if (reply.prefix === "OOM") {
      return new OutOfMemoryError(reply.reply, { endpoint, command: name });
    }
    if (reply.prefix === "MISCONF") {
      return new PersistenceError(reply.reply, { endpoint, command: name });
    }
    if (reply.prefix !== "NOPERM") return reply;
    // A script's keys follow its SHA (or source) and key count; any other command's subject is
    // its first argument (a key, a channel, a subcommand). Values are never shown.
    const scripted = name === "EVALSHA" || name === "EVAL" || name === "FCALL";
    const first = scripted && Number(args[2]) > 0 ? args[3] : scripted ? undefined : args[1];
    return new AclDeniedError(reply.reply, {
      endpoint,
      command: name,
      subject: typeof first === "string" ? quoteValue(first) : undefined,
      user: this.#username,
    });
  }

  #wrap(error: unknown): ConnectionError | TlsError {
    if (error instanceof ConnectionError || error instanceof TlsError) return error;
    if (isTlsFailure(error)) return new TlsError(formatEndpoint(this.endpoint), error);
    const reason = error instanceof Error ? error.message : String(error);
    return new ConnectionError(`Connection to ${formatEndpoint(this.endpoint)} failed: ${reason}`, {
      endpoint: formatEndpoint(this.endpoint),
      cause: error,
    });
  }

  #failure(sendState: "sent" | "not-sent"): RedisHaError {
    const base = this.#wrap(this.#closeError);
    if (base instanceof TlsError) return base;
    return new ConnectionError(base.message, {
      endpoint: base.endpoint,
      sendState,
      cause: base.cause,
    });
  }

  #fail(error: ConnectionError | TlsError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer.
    }
    const settle = (list: Pending[], sendState: "sent" | "not-sent"): void => {
      for (const p of list) {
        if (p.settled) continue;
        this.#settle(p);
        p.reject(this.#failure(sendState));
      }
    };
    const inflight = this.#inflight;
    const unsent = this.#unsent;
    this.#inflight = [];
    this.#unsent = [];
    settle(inflight, "sent");
    settle(unsent, "not-sent");
    for (const listener of this.#closedListeners.splice(0)) listener(error);
    this.#notifyIdle();
  }
}
