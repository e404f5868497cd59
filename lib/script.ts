/**
 * Server-side Lua scripts, run with `EVALSHA` and loaded with `EVAL` when the
 * node does not have them yet (a promoted replica starts with an empty script
 * cache).
 *
 * @module
 */

import { ReplyError } from "./errors.ts";
import type { RespArg, RespReply } from "./resp.ts";

/** A Lua script with its SHA-1, computed once. */
export class Script {
  /** The Lua source. */
  readonly source: string;
  /** A name for error messages. */
  readonly label: string;
  #sha1: Promise<string> | undefined;

  /** Wraps Lua source. */
  constructor(label: string, source: string) {
    this.label = label;
    this.source = source;
  }

  /** The script's SHA-1, as `EVALSHA` expects it. */
  sha1(): Promise<string> {
    this.#sha1 ??= crypto.subtle.digest("SHA-1", new TextEncoder().encode(this.source)).then((d) =>
      [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("")
    );
    return this.#sha1;
  }

  /**
   * Runs the script through `send`: `EVALSHA` first, `EVAL` on `NOSCRIPT`.
   * A `NOSCRIPT` reply means nothing ran, so the fallback is always safe.
   */
  async run(
    send: (args: readonly RespArg[]) => Promise<RespReply>,
    keys: readonly string[],
    args: readonly RespArg[],
  ): Promise<RespReply> {
    const sha = await this.sha1();
    try {
      return await send(["EVALSHA", sha, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!(error instanceof ReplyError) || error.prefix !== "NOSCRIPT") throw error;
      return await send(["EVAL", this.source, keys.length, ...keys, ...args]);
    }
  }
}
