/**
 * Durable writes: `WAIT` in the same socket write as the writes it covers,
 * with group commit.
 *
 * `WAIT n timeout` covers every write its connection sent before it. A
 * durable write is queued on the durable connection; when the connection
 * writes what is queued (in one or more socket writes), one `WAIT` is
 * appended to the last of them and covers all the durable writes before it. A durable write so costs one round
 * trip (its reply and the `WAIT`'s arrive together) and many durable writes
 * share one replica round trip: WAIT costs latency, not throughput.
 *
 * A write resent later (a script's `EVAL` after `NOSCRIPT`) is a new write
 * and gets the `WAIT` of the batch it goes out in.
 *
 * @module
 */

import { abortable } from "../common/abortable.ts";
import type { RedisConnection } from "../protocol/connection.ts";
import { AbortedError, WaitError } from "../common/errors.ts";
import { replyToNumber, type RespArg, type RespReply } from "../protocol/resp.ts";

/** One connection's group-commit `WAIT`. */
export class GroupWait {
  readonly #conn: RedisConnection;
  readonly #required: number;
  readonly #timeoutMs: number;
  /** Durable writes not yet written, each with the waiter for the WAIT that will cover it. */
  readonly #waiting = new Map<readonly RespArg[], PromiseWithResolvers<RespReply>>();

  /** Takes over `conn`'s flush hook: durable writes must go through {@link GroupWait.write}. */
  constructor(conn: RedisConnection, required: number, timeoutMs: number) {
    if (!Number.isInteger(required) || required < 1) {
      throw new RangeError(`required replicas must be >= 1, got ${required}`);
    }
    this.#conn = conn;
    this.#required = required;
    this.#timeoutMs = timeoutMs;
    conn.setFlushHook((batch) => this.#appendWait(batch));
    // A write answered before the connection broke, whose WAIT was never sent: not confirmed.
    conn.onClose((error) => {
      for (const waiter of this.#waiting.values()) waiter.reject(error);
      this.#waiting.clear();
    });
  }

  /** Appends one `WAIT` to a batch that holds durable writes, for all of them. */
  #appendWait(batch: readonly (readonly RespArg[])[]): void {
    const covered: PromiseWithResolvers<RespReply>[] = [];
    for (const args of batch) {
      const waiter = this.#waiting.get(args);
      if (waiter === undefined) continue;
      this.#waiting.delete(args);
      covered.push(waiter);
    }
    if (covered.length === 0) return;
    this.#conn.send(["WAIT", this.#required, this.#timeoutMs]).then(
      (reply) => covered.forEach((w) => w.resolve(reply)),
      (error) => covered.forEach((w) => w.reject(error)),
    );
  }

  /**
   * Sends a write and resolves with its reply once `WAIT` confirmed the
   * required replicas; throws {@link WaitError} (carrying acked/required)
   * when fewer acknowledged. A failed write is rethrown as it is.
   *
   * Once the write's reply arrived the write is applied on the node, so any
   * later failure (the `WAIT` refused because the node was demoted, the
   * connection lost before `WAIT` answered) is a {@link WaitError} with 0
   * acknowledgements and the failure as `cause`, never a definite failure;
   * an abort through `signal` then says the write may have been applied.
   * `signal` abandons only this caller's write and wait, never the shared
   * `WAIT`. With `strings`, bulk replies come back decoded as UTF-8.
   */
  async write(
    args: readonly RespArg[],
    signal?: AbortSignal,
    strings = false,
  ): Promise<RespReply> {
    const own = args.slice(); // this call's identity in the batch
    const due = Promise.withResolvers<RespReply>();
    due.promise.catch(() => {}); // observed below unless the write fails first
    this.#waiting.set(own, due);
    let result: RespReply;
    try {
      result = await this.#conn.send(own, { signal, strings });
    } catch (error) {
      this.#waiting.delete(own); // withdrawn or never written: no WAIT to wait for
      throw error;
    }
    let acked: number;
    try {
      acked = replyToNumber(await abortable(due.promise, signal));
    } catch (error) {
      if (signal?.aborted) {
        throw new AbortedError({
          mayHaveApplied: true,
          reason: signal.reason,
          what: "Durable write's WAIT",
        });
      }
      throw new WaitError({
        acked: 0,
        required: this.#required,
        timeoutMs: this.#timeoutMs,
        cause: error,
      });
    }
    if (acked < this.#required) {
      throw new WaitError({ acked, required: this.#required, timeoutMs: this.#timeoutMs });
    }
    return result;
  }
}
