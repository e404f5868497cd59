/**
 * Server-side Lua scripts, run with `EVALSHA` and loaded with `EVAL` when the
 * node does not have them yet (a promoted replica starts with an empty script
 * cache).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { ReplyError } from "./errors.ts";
import type { RespArg, RespReply } from "./resp.ts";

/** A Lua script with its SHA-1, computed once. */
export class Script {
  /** The Lua source. */
  readonly source: string;
  /** A name for error messages. */
  readonly label: string;
  /** The script's SHA-1 in hex, as `EVALSHA` expects it. */
  readonly sha1: string;

  /** Wraps Lua source. */
  constructor(label: string, source: string) {
    this.label = label;
    this.source = source;
    this.sha1 = createHash("sha1").update(source).digest("hex");
  }

  /**
   * Runs the script through `send`: `EVALSHA` first, `EVAL` on `NOSCRIPT`.
   * A `NOSCRIPT` reply means nothing ran, so the fallback is always safe.
   * The `EVALSHA` is handed to `send` before this returns (no await first),
   * so it joins the batch being assembled.
   */
  async run(
    send: (args: readonly RespArg[]) => Promise<RespReply>,
    keys: readonly string[],
    args: readonly RespArg[],
  ): Promise<RespReply> {
    try {
      return await send(["EVALSHA", this.sha1, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!(error instanceof ReplyError) || error.prefix !== "NOSCRIPT") throw error;
      return await send(["EVAL", this.source, keys.length, ...keys, ...args]);
    }
  }
}
