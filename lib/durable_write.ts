/**
 * Durable writes: `WAIT` after the write, with group commit.
 *
 * `WAIT n timeout` covers every write its connection sent before it, so it
 * is sent only after the write's reply arrived (a script may be sent late,
 * after an EVALSHA/EVAL round). Writes whose replies arrive in the same tick
 * share one `WAIT`: many durable writes cost one replica round trip, so WAIT
 * costs latency, not throughput.
 *
 * @module
 */

import { abortable } from "./_abortable.ts";
import { AbortedError, WaitError } from "./errors.ts";
import { replyToNumber, type RespArg, type RespReply } from "./resp.ts";

/** One connection's group-commit `WAIT`. */
export class GroupWait {
  readonly #send: (args: readonly RespArg[]) => Promise<RespReply>;
  readonly #required: number;
  readonly #timeoutMs: number;
  #pending: Promise<RespReply> | undefined;

  /** `send` must write to the same connection as the durable writes. */
  constructor(
    send: (args: readonly RespArg[]) => Promise<RespReply>,
    required: number,
    timeoutMs: number,
  ) {
    if (!Number.isInteger(required) || required < 1) {
      throw new RangeError(`required replicas must be >= 1, got ${required}`);
    }
    this.#send = send;
    this.#required = required;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Resolves with the write's reply once `WAIT` confirmed the required
   * replicas; throws {@link WaitError} (carrying acked/required) when fewer
   * acknowledged. A failed write is rethrown without a `WAIT`.
   *
   * Once the write's reply arrived the write is applied on the node, so any
   * later failure (the `WAIT` refused because the node was demoted, the
   * connection lost before `WAIT` answered) is a {@link WaitError} with 0
   * acknowledgements and the failure as `cause`, never a definite failure;
   * an abort through `signal` then says the write may have been applied.
   * `signal` abandons only this caller's wait, never the shared `WAIT`.
   */
  async confirm(write: Promise<RespReply>, signal?: AbortSignal): Promise<RespReply> {
    const result = await write;
    this.#pending ??= Promise.resolve().then(() => {
      this.#pending = undefined;
      return this.#send(["WAIT", this.#required, this.#timeoutMs]);
    });
    let acked: number;
    try {
      acked = replyToNumber(await abortable(this.#pending, signal));
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
