/**
 * Server-side Lua scripts, run with `EVALSHA` and loaded with `EVAL` when the
 * node does not have them yet (a promoted replica starts with an empty script
 * cache).
 *
 * @module
 */

import { ReplyError } from "../common/errors.ts";
import type { RespArg, RespReply } from "./resp.ts";

/**
 * What a script declares to Redis (its `#!lua` line): a script that writes
 * is refused whole, before it runs, when the node is out of memory or cannot
 * persist (Redis checks a flagged script up front; an unflagged one only
 * when it reaches its first write, after earlier writes applied).
 * `no-writes`: it only reads (it runs whatever the node's state);
 * `allow-oom`: it writes without growing memory (a renewal, a delete), so it
 * still runs at `maxmemory`.
 */
export type ScriptFlag = "no-writes" | "allow-oom";

/** A Lua script with its SHA-1, computed once. */
export class Script {
  /** The Lua source, with its `#!lua` line. */
  readonly source: string;
  /** A name for error messages. */
  readonly label: string;
  /** The SHA-1 once computed (from then on, `run` sends without waiting). */
  #sha1: string | undefined;
  #computing: Promise<string> | undefined;

  /**
   * Wraps Lua source, declared to Redis with `flag` (none: it writes, and
   * is refused up front at `maxmemory` or when the node cannot persist).
   * Nothing runs yet: the SHA-1 is computed on first use, so declaring a
   * script at module level starts no asynchronous work when the module is
   * imported.
   */
  constructor(label: string, source: string, flag?: ScriptFlag) {
    this.label = label;
    this.source = `#!lua${flag === undefined ? "" : ` flags=${flag}`}\n${source}`;
  }

  /** The script's SHA-1 in hex, as `EVALSHA` expects it (computed once). */
  sha1(): Promise<string> {
    this.#computing ??= crypto.subtle.digest("SHA-1", new TextEncoder().encode(this.source))
      .then((d) => {
        this.#sha1 = [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
        return this.#sha1;
      });
    return this.#computing;
  }

  /**
   * Runs the script through `send`: `EVALSHA` first, `EVAL` on `NOSCRIPT`.
   * A `NOSCRIPT` reply means nothing ran, so the fallback is always safe.
   * Once the SHA-1 is known, the `EVALSHA` is handed to `send` before this
   * returns (no await first), so it joins the batch being assembled.
   */
  async run(
    send: (args: readonly RespArg[]) => Promise<RespReply>,
    keys: readonly string[],
    args: readonly RespArg[],
  ): Promise<RespReply> {
    const sha1 = this.#sha1 ?? await this.sha1();
    try {
      return await send(["EVALSHA", sha1, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!(error instanceof ReplyError) || error.prefix !== "NOSCRIPT") throw error;
      return await send(["EVAL", this.source, keys.length, ...keys, ...args]);
    }
  }
}
