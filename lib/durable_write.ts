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

import { WaitError } from "./errors.ts";
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
   */
  async confirm(write: Promise<RespReply>): Promise<RespReply> {
    const result = await write;
    this.#pending ??= Promise.resolve().then(() => {
      this.#pending = undefined;
      return this.#send(["WAIT", this.#required, this.#timeoutMs]);
    });
    const acked = replyToNumber(await this.#pending);
    if (acked < this.#required) {
      throw new WaitError({ acked, required: this.#required, timeoutMs: this.#timeoutMs });
    }
    return result;
  }
}
